"""Real addresses encrypted at rest: a stolen database reveals no customer address.

With address keys, the tracker seals every real address — and every alias
address, since a simple alias contains one — *before* any store sees it, so
every backend benefits, third-party ones included. Sealing is AES-256-GCM
(authenticated: a tampered or swapped value is detected), with the record's
place as associated data, so a value copied from one row to another, or a row
whose routing columns were changed, does not open. A sealed value reads::

    ct2.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>

Format 2 (``ct2.``) binds every column that routes mail: the store, the
conversation, the role, the record's storage key, the field, and, for the real
address, the alias address (see :func:`record_context`). Format 1 (``ct1.``),
written by earlier releases, bound only the storage key and the field; its
values still open, and :meth:`ct_alias.Tracker.rotate_address_keys` re-seals
them in format 2.

The key id (8 hex characters, derived from the key) says which key sealed it,
so keys rotate like signing keys: a list, oldest → newest; the newest seals,
every listed key opens. :meth:`ct_alias.Tracker.rotate_address_keys` re-seals
stored records with the newest key, after which the oldest can be dropped.

Keys are plain strings, such as those ``ct-alias keys generate`` prints (256
random bits). Needs the ``crypto`` extra (the ``cryptography`` package).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable
from typing import Any, Protocol

from ._keys import MIN_KEY_BYTES, check_key_strength
from .errors import ConfigurationError, CorruptRecord, MissingExtra, UnknownAddressKey

__all__ = [
    "MIN_KEY_BYTES",
    "PREFIX",
    "PREFIX_V2",
    "AddressCipher",
    "Cleartext",
    "Sealer",
    "is_sealed",
    "record_context",
]

#: The prefix of sealed values of format version 1 (bound to the storage key and field only).
PREFIX = "ct1."
#: The prefix of sealed values of format version 2 (bound to the record's place), written now.
PREFIX_V2 = "ct2."
_PREFIXES = (PREFIX, PREFIX_V2)
_NONCE = 12
#: ``base64.urlsafe_b64decode``'s alphabet swap (it then decodes with binascii).
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def is_sealed(value: str) -> bool:
    """Whether a stored value is sealed (addresses always contain ``@``; sealed values never)."""
    return value.startswith(_PREFIXES) and "@" not in value


#: What ``json.dumps(parts, ensure_ascii=False, separators=(",", ":"))`` builds on every
#: call, built once (an encoder keeps no state between calls).
_CONTEXT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: What JSON (``ensure_ascii=False``) escapes in a string besides a quote: a backslash
#: and the control characters below U+0020. Parts without these (and without quotes) are
#: written as they are, so joining them quoted is the very text the encoder builds.
_JSON_ESCAPED = re.compile(r"[\x00-\x1f\\]")
#: The same characters, and the quote, as bytes: deleted from an ASCII context in one
#: ``bytes.translate`` pass (a regular expression's search costs several times that).
_JSON_ESCAPED_BYTES = bytes(range(0x20)) + b'\\"'
#: The version tag and the text between the parts of a context without escapes.
_CONTEXT_HEAD = '["ct_alias.record.v2","'
_CONTEXT_SEP = '","'
_CONTEXT_TAIL = '"]'
#: The quotes the separators put between the six parts (a part's own quote adds one).
_CONTEXT_QUOTES = 2 * 5


def record_context(
    *, store: str, conversation: str, role: str, key: str, field: str, address: str = ""
) -> str:
    """The associated data a format 2 value is sealed with: the record's place, unambiguously.

    A JSON array of a version tag and the parts, so no part can run into the
    next. ``address`` (the canonical alias address) is bound to the real
    address only: the alias field is bound to ``key``, its keyed hash.
    """
    return context_from_parts((store, conversation, role, key, field, address))


#: The parts of a record's place, in :func:`record_context`'s order (store, conversation,
#: role, key, field, alias address or ``""``).
ContextParts = tuple[str, str, str, str, str, str]


def context_from_parts(parts: ContextParts) -> str:
    """:func:`record_context` of the parts in order, for the hot paths that build one per record."""
    try:
        joined = _CONTEXT_SEP.join(parts)
    except TypeError:  # a part that is not text: the encoder says what it makes of it
        joined = None
    if joined is not None and (
        # ASCII: nothing but the separators' quotes is deleted, so nothing needs an escape
        len(joined.encode().translate(None, _JSON_ESCAPED_BYTES)) == len(joined) - _CONTEXT_QUOTES
        if joined.isascii()
        else joined.count('"') == _CONTEXT_QUOTES and _JSON_ESCAPED.search(joined) is None
    ):
        # the common case: the very text the encoder builds, in a fraction of its time
        return _CONTEXT_HEAD + joined + _CONTEXT_TAIL
    return _CONTEXT_JSON.encode(["ct_alias.record.v2", *parts])


def _unpadded_b64decode(payload: str) -> bytes:
    """``base64.urlsafe_b64decode`` of ``payload`` with its padding put back, done directly.

    The same bytes and the same errors (:class:`binascii.Error`; a
    :class:`ValueError` for non-ASCII text), without the generic argument
    handling that made up most of its cost.
    """
    padded = payload.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(payload) % 4)
    return binascii.a2b_base64(padded)


def _key_id_of(stored: str) -> str:
    return stored[len(PREFIX) :].partition(".")[0]


class Sealer(Protocol):
    """What the tracker needs to protect addresses at rest."""

    def seal(self, text: str, *, context: str) -> str:
        """Return the stored form of ``text``, bound to ``context`` (the record's place)."""
        ...

    def open(
        self,
        stored: str,
        *,
        context: str,
        allow_plaintext: bool = False,
        legacy_context: str | None = None,
        record: str | None = None,
    ) -> str:
        """Return the text behind a stored form.

        Plaintext (a value stored before encryption was turned on) passes
        through only with ``allow_plaintext``; otherwise it is refused as
        corrupt, since anyone able to write to the database could plant it.
        ``legacy_context`` opens a format 1 value (default: ``context``);
        ``record`` names the record in errors (``context`` may hold addresses).
        """
        ...

    def needs_reseal(self, stored: str) -> bool:
        """Whether ``stored`` is not in the form :meth:`seal` makes now."""
        ...


class Cleartext:
    """No encryption: stores see addresses as they are (the default)."""

    def seal(self, text: str, *, context: str) -> str:
        """Return ``text`` unchanged."""
        del context
        return text

    def open(
        self,
        stored: str,
        *,
        context: str,
        allow_plaintext: bool = True,
        legacy_context: str | None = None,
        record: str | None = None,
    ) -> str:
        """Return ``stored``; a sealed value means keys are missing.

        Raises:
            UnknownAddressKey: ``stored`` is sealed, and this tracker has no address keys.
        """
        del context, allow_plaintext, legacy_context, record
        if is_sealed(stored):
            raise UnknownAddressKey(_key_id_of(stored))
        return stored

    def needs_reseal(self, stored: str) -> bool:
        """Never: without keys there is nothing to re-seal with."""
        del stored
        return False

    def __repr__(self) -> str:
        return "Cleartext()"


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415
    except ImportError:
        raise MissingExtra("crypto", "cryptography", "Address encryption") from None
    return AESGCM


class AddressCipher:
    """AES-256-GCM sealing with a list of keys, oldest → newest.

    Args:
        keys: the address keys (strings or bytes of at least 16 bytes, such
            as ``ct-alias keys generate`` prints), oldest first.

    Raises:
        ConfigurationError: no keys, or one shorter than 128 bits.
        MissingExtra: the ``cryptography`` package is not installed.
    """

    __slots__ = ("_ciphers", "_exceptions", "_newest")

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        aesgcm = _aesgcm()
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415

        self._exceptions = (InvalidTag,)
        key_list = list(keys)
        if not key_list or any(not isinstance(k, (str, bytes)) or not k for k in key_list):
            raise ConfigurationError("address keys must be a non-empty list of non-empty strings")
        check_key_strength("address key", key_list)
        self._ciphers: dict[str, Any] = {}
        for key in key_list:
            secret = key.encode("utf-8") if isinstance(key, str) else key
            derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + secret).digest()
            key_id = hashlib.sha256(b"ct_alias.address-key-id\x00" + derived).hexdigest()[:8]
            self._ciphers[key_id] = aesgcm(derived)
            self._newest = key_id

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys, oldest first (safe to show: they reveal nothing of a key)."""
        return list(self._ciphers)

    @property
    def newest(self) -> str:
        """The id of the key that seals."""
        return self._newest

    def __repr__(self) -> str:
        return f"<AddressCipher keys={self.key_ids}>"

    def seal(self, text: str, *, context: str) -> str:
        """Encrypt ``text`` with the newest key, bound to ``context`` (format 2)."""
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[self._newest].encrypt(
            nonce, text.encode("utf-8"), context.encode("utf-8")
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{PREFIX_V2}{self._newest}.{payload}"

    def open(
        self,
        stored: str,
        *,
        context: str,
        allow_plaintext: bool = False,
        legacy_context: str | None = None,
        record: str | None = None,
    ) -> str:
        """Decrypt a sealed value.

        Args:
            stored: the stored form.
            context: what a format 2 value was sealed for (the record's place).
            allow_plaintext: let a value that is not sealed through (records
                from before encryption was turned on, during their migration).
            legacy_context: what a format 1 value was sealed for (the
                record's key and field); without it, ``context``.
            record: how errors name the record (default: ``context``).

        Raises:
            UnknownAddressKey: it was sealed with a key that is not in the list.
            CorruptRecord: it was altered, belongs to another record or place,
                or is plaintext where only sealed values are allowed.
        """
        label = context if record is None else record
        if not (stored.startswith(_PREFIXES) and "@" not in stored):  # is_sealed(), inline
            if allow_plaintext:
                return stored
            raise CorruptRecord(label, "none")
        if stored.startswith(PREFIX_V2):
            bound = context
        else:  # format 1: its own context, or the caller's (who then speaks format 1)
            bound = context if legacy_context is None else legacy_context
        key_id, _, payload = stored[len(PREFIX) :].partition(".")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownAddressKey(key_id)
        try:
            raw = _unpadded_b64decode(payload)
            plain: bytes = cipher.decrypt(raw[:_NONCE], raw[_NONCE:], bound.encode("utf-8"))
            return plain.decode("utf-8")
        except (*self._exceptions, binascii.Error, ValueError, UnicodeDecodeError):
            raise CorruptRecord(label, key_id) from None

    def needs_reseal(self, stored: str) -> bool:
        """Whether ``stored`` is plaintext, of format 1, or sealed with an older key."""
        return not (is_sealed(stored) and stored.startswith(f"{PREFIX_V2}{self._newest}."))
