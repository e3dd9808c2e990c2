"""The alias codec: stateless, signed, versioned tokens that carry their expiry.

A token is the text a strategy puts into an alias address. It is::

    base32hex( version·8 ‖ id ‖ expires ‖ mac )     (lower case, no padding)

* ``version`` — the format's number (1-31) in the top five bits of the first
  byte, so the first character of every token names its format (``1`` for
  complex tokens, ``2`` for simple tags) and a future format can live beside
  today's;
* ``id`` — random bytes that make every alias distinct;
* ``expires`` — four bytes, the expiry in whole seconds since the Unix epoch
  (unsigned, big-endian);
* ``mac`` — HMAC-SHA256 over everything before it plus the *binding* (what
  the token must not be separated from: the alias domain, and for simple
  aliases the visible address), truncated.

The alphabet is RFC 4648 base32hex in lower case (``0-9a-v``): safe in a local
part and in a DNS label, and decoded the same whatever its case. Every
format's length in bytes is a multiple of five, so the text has no padding and
every character carries five bits: there is exactly one text per token, and
changing any character (other than its case) changes the token.

Keys are a list, oldest → newest, as in itsdangerous: the newest signs, every
listed key verifies, and a key removed from the list no longer verifies. Keys
are derived with itsdangerous' :class:`~itsdangerous.Signer` key derivation;
MACs are compared in constant time. Decoding never touches storage, so forged
and malformed aliases cost one HMAC per key to refuse.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from attrs import field, frozen
from itsdangerous import Signer

from ._entropy import random_bytes
from ._keys import check_key_strength
from .errors import ConfigurationError, ForgedAlias, MalformedAlias

__all__ = ["COMPLEX_V1", "SIMPLE_V1", "AliasCodec", "Token", "TokenFormat"]


#: HMAC's block size for SHA-256, in bytes (RFC 2104's B).
_BLOCK = 64


def _find_sha256() -> Callable[[bytes], hashlib._Hash]:
    """CPython's own SHA-256 where it has one, else :func:`hashlib.sha256` (OpenSSL's).

    A token's MAC hashes a few dozen bytes, so its cost is copying two hash
    states: a memory copy for CPython's implementation (``_sha2`` from 3.12,
    ``_sha256`` before), an EVP context copy for OpenSSL's, about three times
    slower per MAC between other work. Both compute the same SHA-256.
    """
    for name in ("_sha2", "_sha256"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        constructor: Callable[[bytes], hashlib._Hash] = module.sha256
        return constructor
    return hashlib.sha256  # pragma: no cover - CPython always has one of them


_sha256 = _find_sha256()


def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states that have hashed ``key``'s inner and outer pads (RFC 2104).

    HMAC(key, m) = H(key ^ opad ‖ H(key ^ ipad ‖ m)). Hashing the pads once
    and copying the two states per message is what ``hmac`` does inside, with
    fewer calls: each MAC costs two state copies, not a keyed object's copy.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha256(bytes(b ^ 0x36 for b in key))
    outer = _sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


_EXPIRES_SIZE = 4
# Bound once: ``datetime.fromtimestamp`` and ``int.from_bytes`` build a bound method on
# every lookup (they are classmethods), and verifying a token uses both.
_from_timestamp = datetime.fromtimestamp
_from_bytes = int.from_bytes  # big-endian, the default
_MAX_EXPIRES = 2**32 - 1
#: RFC 4648 base32hex, lower case: also what ``int(text, 32)`` reads.
ALPHABET = "0123456789abcdefghijklmnopqrstuv"


def _b32(raw: bytes, steps: tuple[tuple[int, int, int], ...] | None = None) -> str:
    """Encode ``raw`` (a multiple of 5 bytes) as lower-case base32hex.

    The 5-bit groups are spread into one byte each with a few whole-number
    mask-and-shift steps (halving the blocks each time), then the bytes are
    mapped to the alphabet by ``bytes.translate``: a handful of C-level
    operations instead of one Python step per character.
    """
    size = len(raw)
    number = int.from_bytes(raw, "big")
    for low, high, shift in _spreading(size) if steps is None else steps:
        number = (number & low) | ((number & high) << shift)
    return number.to_bytes(size * 8 // 5, "big").translate(_TO_ALPHABET).decode("ascii")


#: Byte values 0-31 to the alphabet's characters.
_TO_ALPHABET = bytes.maketrans(bytes(range(32)), ALPHABET.encode("ascii"))


@functools.cache
def _spreading(size: int) -> tuple[tuple[int, int, int], ...]:
    """The (keep, move, shift) steps that put each 5-bit group of ``size`` bytes in a byte.

    Think of the number as ``2**k`` groups (the top ones zero). A block of
    ``c`` groups, ``5c`` bits of data in a slot of ``8c`` bits, is split in
    two: its low half (``5c/2`` bits) stays, its high half moves up by
    ``8c/2 - 5c/2`` bits to the bottom of the slot's upper half. After the
    step for ``c = 2``, group ``i`` is in byte ``i``.
    """
    groups = size * 8 // 5
    blocks = 1 << (groups - 1).bit_length()  # groups, rounded up to a power of two
    steps = []
    chunk = blocks
    while chunk >= 2:
        half = 5 * chunk // 2  # data bits in each half of a block
        slot = 8 * chunk  # a block's slot, in bits
        low = sum(((1 << half) - 1) << (slot * i) for i in range(blocks // chunk))
        steps.append((low, low << half, 4 * chunk - half))
        chunk //= 2
    return tuple(steps)


@frozen
class TokenFormat:
    """The layout of one token version.

    Attributes:
        version: 1-31; the first character of every token of this format is
            ``ALPHABET[version]``.
        id_size: how many random bytes make the token unique.
        mac_size: how many bytes of HMAC-SHA256 are kept.
        name: a human-readable name, for docs and errors.
    """

    version: int
    id_size: int
    mac_size: int
    name: str = ""
    #: The token's length in bytes.
    size: int = field(init=False, repr=False, eq=False)
    #: The token's length in characters.
    length: int = field(init=False, repr=False, eq=False)
    #: The first character of every token of this format.
    marker: str = field(init=False, repr=False, eq=False)
    #: The first byte of every token of this format (the version, shifted).
    header: bytes = field(init=False, repr=False, eq=False)
    #: How a token's bytes are spread into 5-bit characters (see ``_spreading``).
    spreading: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # Derived once: encode() and decode() read them on every alias.
        size = 1 + self.id_size + _EXPIRES_SIZE + self.mac_size
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "length", size * 8 // 5)
        object.__setattr__(self, "marker", ALPHABET[self.version] if 0 <= self.version < 32 else "")
        object.__setattr__(self, "header", bytes(((self.version << 3) & 0xFF,)))
        if not 1 <= self.version <= 31:
            raise ConfigurationError("a token format version is a number from 1 to 31")
        if self.id_size < 1 or self.mac_size < 4:
            raise ConfigurationError("a token format needs an id and a MAC of at least 4 bytes")
        if self.mac_size > hashlib.sha256().digest_size:
            raise ConfigurationError("a MAC cannot be longer than SHA-256's 32 bytes")
        if self.size % 5:
            raise ConfigurationError(
                f"a token format's size must be a multiple of 5 bytes (no base32 padding), "
                f"not {self.size}"
            )
        object.__setattr__(self, "spreading", _spreading(self.size))


#: The complex strategy's token: 40 characters starting with ``1``, an 80-bit id
#: and an 80-bit MAC.
COMPLEX_V1 = TokenFormat(version=1, id_size=10, mac_size=10, name="complex-v1")
#: The simple strategy's tag: 24 characters starting with ``2``, a 32-bit id and
#: a 48-bit MAC bound to the visible address, short enough to share a DNS label
#: with a top-level domain.
SIMPLE_V1 = TokenFormat(version=2, id_size=4, mac_size=6, name="simple-v1")


@frozen
class Token:
    """A decoded, verified token.

    Attributes:
        format: its :class:`TokenFormat`.
        id: its random id bytes.
        expires_at: when it expires (UTC, whole seconds).
        text: its canonical (lower-case) text.
    """

    format: TokenFormat
    id: bytes = field(repr=False)
    expires_at: datetime
    text: str


class AliasCodec:
    """Encode and verify tokens with a list of secret keys (oldest → newest).

    Args:
        keys: the secret keys, oldest first; the last one signs new tokens.
        salt: separates these keys' use from any other use of the same secrets.

    Raises:
        ConfigurationError: no keys, a key that is not str/bytes, or one
            shorter than 128 bits (make keys with ``ct-alias keys generate``).
    """

    __slots__ = ("_macs",)

    def __init__(
        self, keys: Iterable[str | bytes] | str | bytes, *, salt: bytes = b"ct_alias.codec"
    ) -> None:
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        key_list: list[str | bytes] = list(keys)
        if not key_list:
            raise ConfigurationError("at least one secret key is needed")
        for key in key_list:
            if not isinstance(key, (str, bytes)) or not key:
                raise ConfigurationError("every secret key must be a non-empty str or bytes")
        check_key_strength("signing key", key_list)
        secrets_ = [k.encode() if isinstance(k, str) else k for k in key_list]
        signer = Signer(secrets_, salt=salt, key_derivation="hmac", digest_method=hashlib.sha256)
        derived = [signer.derive_key(key) for key in signer.secret_keys]
        # HMAC-SHA256 pad states per key, newest first (most tokens in circulation
        # were signed by the newest); each MAC copies them instead of re-deriving
        # the key pads.
        self._macs = tuple(_hmac_pads(key) for key in reversed(derived))

    @property
    def key_count(self) -> int:
        """How many keys verify tokens."""
        return len(self._macs)

    def __repr__(self) -> str:
        return f"<AliasCodec with {len(self._macs)} key(s)>"

    def encode(
        self,
        fmt: TokenFormat,
        expires_at: datetime,
        *,
        bind: bytes = b"",
        token_id: bytes | None = None,
    ) -> str:
        """Return a new token's text, signed with the newest key.

        Args:
            fmt: the token layout.
            expires_at: the expiry to carry (aware; truncated to whole seconds).
            bind: bytes the token is bound to (not carried, but needed to verify).
            token_id: the id bytes; random when not given.

        Raises:
            ConfigurationError: the expiry is outside what four bytes can hold.
        """
        expires = int(expires_at.timestamp())
        if not 0 < expires <= _MAX_EXPIRES:
            raise ConfigurationError(f"expiry {expires_at.isoformat()} cannot be encoded")
        if token_id is None:
            token_id = random_bytes(fmt.id_size)
        elif len(token_id) != fmt.id_size:
            raise ConfigurationError(f"{fmt.name} token ids are {fmt.id_size} bytes")
        body = fmt.header + token_id + expires.to_bytes(_EXPIRES_SIZE, "big")
        inner, outer = self._macs[0]
        inner = inner.copy()
        inner.update(body + bind)
        outer = outer.copy()
        outer.update(inner.digest())
        return _b32(body + outer.digest()[: fmt.mac_size], fmt.spreading)

    def decode(self, fmt: TokenFormat, text: str, *, bind: bytes = b"") -> Token:
        """Verify a token's text and return what it carries.

        Expiry is *not* checked here: the caller compares ``expires_at`` with
        its clock, so it can tell an expired alias from a forged one.

        Args:
            fmt: the layout the text is expected to have.
            text: the token text, in any case.
            bind: the same binding bytes as when it was encoded.

        Raises:
            MalformedAlias: wrong length, alphabet or version.
            ForgedAlias: the MAC does not verify with any key.
        """
        lowered, body = self._verified(fmt, text, bind)
        expires = _from_bytes(body[-_EXPIRES_SIZE:])
        # positional: measurably cheaper than keywords on this hot path
        return Token(fmt, body[1:-_EXPIRES_SIZE], _from_timestamp(expires, UTC), lowered)

    def expiry(self, fmt: TokenFormat, text: str, *, bind: bytes = b"") -> datetime:
        """Verify a token's text and return only its expiry (:meth:`decode` without a Token).

        Raises:
            MalformedAlias: wrong length, alphabet or version.
            ForgedAlias: the MAC does not verify with any key.
        """
        body = self._verified(fmt, text, bind)[1]
        return _from_timestamp(_from_bytes(body[-_EXPIRES_SIZE:]), UTC)

    def _verified(self, fmt: TokenFormat, text: str, bind: bytes) -> tuple[str, bytes]:
        """The token's canonical text and its body (everything before the MAC), once verified."""
        lowered = text.lower()
        size = fmt.size
        if len(lowered) != fmt.length or not lowered.isascii():
            raise MalformedAlias(text, f"not a {fmt.name} token")
        # As bytes: isalnum() reads a table per byte, and int() parses them as they are
        # (a str's isalnum() looks each character up in Unicode's tables, and int() first
        # copies a str, turning any Unicode digit or space into ASCII).
        ascii_text = lowered.encode("ascii")
        if not ascii_text.isalnum():
            raise MalformedAlias(text, f"not a {fmt.name} token")
        if lowered[0] != fmt.marker:
            raise MalformedAlias(text, f"unknown token format {lowered[0]!r}")
        try:
            raw = int(ascii_text, 32).to_bytes(size, "big")
        except ValueError:  # a letter after "v"
            raise MalformedAlias(text, f"not a {fmt.name} token") from None
        if raw[0] & 0x07:
            raise MalformedAlias(text, f"not a {fmt.name} token")
        mac_size = fmt.mac_size
        cut = size - mac_size
        body, mac = raw[:cut], raw[cut:]
        message = body + bind
        for inner_pad, outer_pad in self._macs:
            inner = inner_pad.copy()
            inner.update(message)
            outer = outer_pad.copy()
            outer.update(inner.digest())
            if hmac.compare_digest(outer.digest()[:mac_size], mac):
                return lowered, body
        raise ForgedAlias(text)
