"""The alias value type, its participant roles and its lifecycle states."""

from __future__ import annotations

import enum
from datetime import datetime

from attrs import field, frozen

from .errors import ExpiredAlias, ExpiryReason, RevokedAlias
from .vocabulary import Role

__all__ = ["Alias", "AliasStatus", "Role"]


class AliasStatus(enum.StrEnum):
    """The lifecycle state of an alias."""

    ACTIVE = "active"
    """Working."""
    ENDED = "ended"
    """Its conversation ended; it works until ``ends_at`` (the grace period), then stops."""
    EXPIRED = "expired"
    """Its time to live is over."""
    REVOKED = "revoked"
    """Killed on purpose; never works again."""


# The states as plain names: in Python 3.11 every ``AliasStatus.X`` is an attribute
# lookup through the enum's metaclass hook, several times a plain global's cost, on
# checks that run on every unmask.
_ENDED = AliasStatus.ENDED
_EXPIRED = AliasStatus.EXPIRED
_REVOKED = AliasStatus.REVOKED
_TTL = ExpiryReason.TTL
_ENDED_REASON = ExpiryReason.ENDED


@frozen
class Alias:
    """A masked address, as issued by :meth:`ct_alias.Tracker.mask`.

    Attributes:
        address: the alias, in its canonical (lower-case) form.
        real_address: the address it stands for (never shown in ``repr``).
            Inside a store this may be the sealed (encrypted) form: stores
            treat it as opaque text.
        conversation: what it belongs to, usually an order id.
        store: the tenant whose policy issued it.
        role: whose address it masks.
        strategy: the strategy that built it (``"complex"``, ``"simple"``, …).
        created_at: when it was issued (UTC).
        expires_at: when its time to live ends (UTC); carried, signed, in the alias itself.
        status: the stored lifecycle state (see :meth:`status_at` for the state at a time).
        ends_at: when an ended (or reactivated) alias stops working, if that is
            before ``expires_at``.
        revoked_at: when it was revoked, if it was.
        key: the storage key, a keyed hash of ``address`` (used by stores).
        slot: the storage key of its (store, conversation, role, real address)
            slot while it is the current alias there, else ``None``.
        owner: the storage key of the person it masks (:meth:`BlindIndex.owner_key
            <ct_alias.blind_index.BlindIndex.owner_key>` of its real address),
            so that :meth:`Tracker.forget <ct_alias.Tracker.forget>` finds
            every alias of one address; ``None`` for records stored before
            owners were kept, until they are backfilled. An index, not part of
            the alias's identity: equality ignores it.
    """

    address: str
    real_address: str = field(repr=False)
    conversation: str
    store: str
    role: Role
    strategy: str
    created_at: datetime
    expires_at: datetime
    status: AliasStatus = AliasStatus.ACTIVE
    ends_at: datetime | None = None
    revoked_at: datetime | None = None
    key: str = field(default="", repr=False)
    slot: str | None = field(default=None, repr=False)
    owner: str | None = field(default=None, repr=False, eq=False)

    def status_at(self, now: datetime) -> AliasStatus:
        """The lifecycle state at ``now``, taking expiry and the end of grace into account."""
        if self.status is _REVOKED:
            return _REVOKED
        if now >= self.expires_at:
            return _EXPIRED
        if self.ends_at is not None and now >= self.ends_at:
            return _ENDED
        return self.status

    def usable_at(self, now: datetime) -> bool:
        """Whether mail to this alias is delivered at ``now``."""
        return (
            self.status is not _REVOKED
            and now < self.expires_at
            and (self.ends_at is None or now < self.ends_at)
        )

    def check_usable(self, now: datetime) -> None:
        """Raise unless the alias works at ``now``.

        Raises:
            RevokedAlias: it was revoked.
            ExpiredAlias: its time to live ran out, or its grace period ended.
        """
        if self.status is _REVOKED:
            raise RevokedAlias(self.address, self.revoked_at or self.expires_at)
        if now >= self.expires_at:
            raise ExpiredAlias(self.address, self.expires_at, _TTL)
        if self.ends_at is not None and now >= self.ends_at:
            raise ExpiredAlias(self.address, self.ends_at, _ENDED_REASON)
