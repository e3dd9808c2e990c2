"""Signed, expiring tokens that name an alias by its storage key, under an alias domain.

Bounce addresses (:mod:`ct_alias.bounces`) and unsubscribe addresses
(:mod:`ct_alias._unsubscribe`) are both such a token as a local part: the
format's version, the alias's 16-byte storage key, an expiry and a MAC bound to
the token's purpose and the alias domain, made by the
:class:`~ct_alias.codec.AliasCodec` that makes aliases. A token of one purpose
or domain never verifies as another's. Each is checked from its text alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from attrs import frozen

from .codec import AliasCodec, TokenFormat
from .errors import MalformedAlias
from .vocabulary import MAX_ADDRESS

__all__ = ["KeyToken"]


@frozen
class KeyToken:
    """One kind of key token: its format, how long it works and what its MAC is bound to.

    Attributes:
        format: the token format (its version is the token's first character).
        ttl: how long a token works after it is made.
        purpose: the bytes the MAC is bound to, before the domain (never
            shared by two kinds).
        noun: what the token is called in error messages ("a bounce address").
    """

    format: TokenFormat
    ttl: timedelta
    purpose: bytes
    noun: str

    def _bind(self, domain: str) -> bytes:
        return self.purpose + domain.encode("ascii", "replace")

    def make(self, codec: AliasCodec, alias_key: str, domain: str, now: datetime) -> str | None:
        """The token naming the alias stored under ``alias_key``, working until ``now + ttl``.

        Returns:
            The token, or ``None`` when the key is not a 16-byte hex storage key
            or ``<token>@<domain>`` would be longer than 254 octets.
        """
        try:
            key = bytes.fromhex(alias_key)
        except ValueError:
            return None
        if len(key) != self.format.id_size or self.format.length + 1 + len(domain) > MAX_ADDRESS:
            return None
        return codec.encode(self.format, now + self.ttl, bind=self._bind(domain), token_id=key)

    def looks_like(self, local: str) -> bool:
        """Whether a local part has this kind's shape (not whether it verifies)."""
        return len(local) == self.format.length and local[:1].lower() == self.format.marker

    def read(
        self, codec: AliasCodec, local: str, domain: str, *, shown: str | None = None
    ) -> tuple[str, datetime]:
        """The storage key a token names, and its expiry (not checked).

        Args:
            codec: the codec holding the current keys.
            local: the token (an address's local part).
            domain: the alias domain the token was made for.
            shown: what the error names (default: ``local``).

        Raises:
            MalformedAlias: not a token of this kind.
            ForgedAlias: its MAC does not verify with any current key, or it was
                made for another domain or purpose.
        """
        if not self.looks_like(local):
            raise MalformedAlias(local if shown is None else shown, f"not {self.noun}")
        decoded = codec.decode(self.format, local, bind=self._bind(domain))
        return decoded.id.hex(), decoded.expires_at
