"""Bounce addresses and delivery reports: delivery failures come home to the timeline.

Every message the relay delivers leaves with a **bounce address** as its
envelope sender: a signed, expiring token under the alias domain, in the
manner of VERP and SRS, that names the alias the message was delivered for.
A delivery report (RFC 3464) sent to it is *consumed*: read, recorded as a
``delivery-failed`` event on the right conversation, and never relayed as it
came (a report quotes the real address it could not reach; see
:func:`ct_alias.mail.read_report`). Like an alias,
a bounce address is checked without storage: forged, malformed and expired
ones are refused from their text alone.

The token (:data:`BOUNCE_V1`) is 48 characters starting with ``3``: the
version, the alias's 16-byte storage key, the expiry and a 72-bit MAC bound
to the alias domain, so it cannot be moved to another domain or made to name
another alias.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ._key_tokens import KeyToken
from .codec import AliasCodec, TokenFormat

__all__ = [
    "BOUNCE_TTL",
    "BOUNCE_V1",
    "looks_like_bounce_address",
    "make_bounce_address",
    "read_bounce_address",
]

#: The bounce address token: 48 characters starting with ``3``, the alias's
#: 128-bit storage key and a 72-bit MAC.
BOUNCE_V1: Final = TokenFormat(version=3, id_size=16, mac_size=9, name="bounce-v1")
#: How long a bounce address is accepted: longer than any MTA's queue lifetime
#: (Postfix's default is 5 days).
BOUNCE_TTL: Final = timedelta(days=7)
_BOUNCE: Final = KeyToken(BOUNCE_V1, BOUNCE_TTL, b"ct_alias.bounce\x00", "a bounce address")


def make_bounce_address(
    codec: AliasCodec, alias_key: str, domain: str, now: datetime
) -> str | None:
    """The bounce address for mail delivered for the alias stored under ``alias_key``.

    Returns:
        ``<token>@<domain>``, or ``None`` when the key is not a 16-byte hex
        storage key or the address would be longer than 254 octets.
    """
    token = _BOUNCE.make(codec, alias_key, domain, now)
    return None if token is None else f"{token}@{domain}"


def looks_like_bounce_address(local: str) -> bool:
    """Whether a local part has the shape of a bounce token (not whether it verifies)."""
    return _BOUNCE.looks_like(local)


def read_bounce_address(codec: AliasCodec, address: str, domain: str) -> tuple[str, datetime]:
    """The storage key of the alias a bounce address names, and its expiry (not checked).

    Raises:
        MalformedAlias: not a bounce address.
        ForgedAlias: its MAC does not verify with any current key.
    """
    local, _, _ = address.rpartition("@")
    return _BOUNCE.read(codec, local, domain, shown=address)
