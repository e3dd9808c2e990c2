"""Blind indexes: keyed hashes that let stores find records without plaintext.

Stores never key anything by a real address, nor by an alias address (a
simple alias contains its real address). They key aliases by
:meth:`BlindIndex.alias_key` and the (store, conversation, role, real address)
slot by :meth:`BlindIndex.slot_key`, both keyed BLAKE2b hashes, and the
person an alias masks by :meth:`BlindIndex.owner_key` (so that erasure finds
every alias of one address, across stores and conversations).

The index key is separate from the signing keys and the address-encryption
keys, so rotating those never changes an index. It must never change once
aliases are stored. Without one, a fixed public key is used: uniqueness and
lookups work the same, but someone holding the database can confirm a guessed
address by hashing it. Set one in production.
"""

from __future__ import annotations

import hashlib

from ._keys import check_key_strength
from .errors import ConfigurationError

__all__ = ["BlindIndex"]

_PUBLIC_KEY = b"ct_alias public blind index key"


class BlindIndex:
    """Keyed hashes for storage keys.

    Args:
        key: the index secret (str or bytes), or ``None`` for the public default.
    """

    __slots__ = ("_alias", "_keyed", "_message", "_owner", "_slot")

    def __init__(self, key: str | bytes | None = None) -> None:
        if key is None:
            secret = _PUBLIC_KEY
        elif isinstance(key, (str, bytes)) and key:
            check_key_strength("index key", [key])
            secret = key.encode("utf-8") if isinstance(key, str) else key
        else:
            raise ConfigurationError("the index key must be a non-empty str or bytes")
        self._keyed = key is not None
        derived = hashlib.sha256(b"ct_alias.blind_index.v1\x00" + secret).digest()
        self._alias = hashlib.blake2b(key=derived, digest_size=16, person=b"ct_alias.alias")
        self._slot = hashlib.blake2b(key=derived, digest_size=16, person=b"ct_alias.slot")
        self._message = hashlib.blake2b(key=derived, digest_size=16, person=b"ct_alias.msgid")
        self._owner = hashlib.blake2b(key=derived, digest_size=16, person=b"ct_alias.owner")

    @property
    def keyed(self) -> bool:
        """Whether a secret index key was given (rather than the public default)."""
        return self._keyed

    def alias_key(self, alias: str) -> str:
        """The storage key of a canonical alias address (32 hex characters)."""
        digest = self._alias.copy()
        digest.update(alias.encode())
        return digest.hexdigest()

    def slot_key(self, store: str, conversation: str, role: str, real_key: str) -> str:
        """The storage key of the slot an alias occupies (32 hex characters)."""
        digest = self._slot.copy()
        digest.update("\x00".join((store, conversation, role, real_key)).encode("utf-8"))
        return digest.hexdigest()

    def owner_key(self, real_key: str) -> str:
        """The owner of an alias: the person it masks, by normalised address (32 hex characters).

        ``real_key`` is :attr:`RealAddress.key <ct_alias.addresses.RealAddress.key>`
        (the address as the tracker compares it), so every alias of one
        address, in any store and conversation, has the same owner, and
        nobody without the index key can tell whose it is.
        """
        digest = self._owner.copy()
        digest.update(real_key.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def message_key(self, conversation: str, message_id: str) -> str:
        """The stand-in for a Message-ID relayed in ``conversation`` (32 hex characters).

        The same id in the same conversation always gets the same stand-in, so
        a reply's ``In-Reply-To`` can be mapped back; nobody without the index
        key can tell which id it stands for.
        """
        digest = self._message.copy()
        digest.update("\x00".join((conversation, message_id)).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"<BlindIndex {'keyed' if self._keyed else 'public'}>"
