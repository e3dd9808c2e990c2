"""Unsubscribe addresses: the signed, expiring ``List-Unsubscribe`` target of a notification.

A non-critical notification (``Tracker.notify(..., critical=False)``) names a
mailto address under the alias domain whose local part is a token
(:data:`UNSUBSCRIBE_V1`, 48 characters starting with ``4``): the customer
alias's 16-byte storage key, an expiry and a 72-bit MAC bound to the alias
domain, made by the same :class:`~ct_alias.codec.AliasCodec` (itsdangerous key
derivation) as aliases and bounce addresses. Mail to it through the relay, or
the token handed to the host's own https endpoint, opts the customer out of
the conversation's non-critical messages. Like an alias, it is checked from
its text alone: forged, malformed and expired ones are refused without a
storage call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ._key_tokens import KeyToken
from .codec import AliasCodec, TokenFormat

__all__ = [
    "UNSUBSCRIBE_TTL",
    "UNSUBSCRIBE_V1",
    "looks_like_unsubscribe",
    "make_unsubscribe_token",
    "read_unsubscribe_token",
]

#: The unsubscribe token: 48 characters starting with ``4``.
UNSUBSCRIBE_V1: Final = TokenFormat(version=4, id_size=16, mac_size=9, name="unsubscribe-v1")
#: How long an unsubscribe address (or link) works after the notification that carried it.
UNSUBSCRIBE_TTL: Final = timedelta(days=90)
_UNSUBSCRIBE: Final = KeyToken(
    UNSUBSCRIBE_V1, UNSUBSCRIBE_TTL, b"ct_alias.unsubscribe\x00", "an unsubscribe token"
)


def make_unsubscribe_token(
    codec: AliasCodec, alias_key: str, domain: str, now: datetime
) -> str | None:
    """The token opting out the customer whose alias is stored under ``alias_key``.

    Returns:
        The token, or ``None`` when the key is not a 16-byte hex storage key or
        ``<token>@<domain>`` would be longer than 254 octets.
    """
    return _UNSUBSCRIBE.make(codec, alias_key, domain, now)


def looks_like_unsubscribe(local: str) -> bool:
    """Whether a local part has the shape of an unsubscribe token (not whether it verifies)."""
    return _UNSUBSCRIBE.looks_like(local)


def read_unsubscribe_token(codec: AliasCodec, token: str, domain: str) -> tuple[str, datetime]:
    """The storage key of the customer alias a token names, and its expiry (not checked).

    Raises:
        MalformedAlias: not an unsubscribe token.
        ForgedAlias: its MAC does not verify with any current key, or it was
            made for another alias domain.
    """
    return _UNSUBSCRIBE.read(codec, token, domain)
