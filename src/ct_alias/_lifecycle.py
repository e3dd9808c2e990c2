"""Pure lifecycle rules: which aliases end, reopen or die, and what the timeline says.

Each rule reads alias records and returns a :class:`Changes`: the status
changes for :meth:`Storage.update <ct_alias.storage.Storage.update>` and the
timeline entries that describe them, to be written in one transaction. No
rule reads the clock or touches storage; the tracker does both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from .aliases import Alias, AliasStatus
from .policy import Policy
from .storage.base import AliasChange
from .timeline import AliasEvent, EntryKind, TimelineEntry, iso_utc

__all__ = ["Changes", "alias_event", "ending", "reactivation", "retirement", "revocation"]


@frozen
class Changes:
    """Status changes and the timeline entries that record them.

    Attributes:
        changes: for :meth:`Storage.update <ct_alias.storage.Storage.update>`.
        entries: written in the same transaction.
    """

    changes: tuple[AliasChange, ...] = ()
    entries: tuple[TimelineEntry, ...] = ()


def alias_event(alias: Alias, name: AliasEvent, at: datetime, **data: Any) -> TimelineEntry:
    """The timeline entry of an alias event: the alias by reference, never by address."""
    # str() of these StrEnums is their value, without the enum property's lookup
    details = {"ref": alias.key, "role": str(alias.role), "strategy": alias.strategy}
    if data:
        details.update({k: v for k, v in data.items() if v is not None})
    return TimelineEntry(
        alias.conversation, EntryKind.EVENT, str(name), at, details, store=alias.store
    )


def ending(
    aliases: Iterable[Alias],
    *,
    policy_for: Callable[[str], Policy],
    at: datetime,
    now: datetime,
    event: str | None,
    grace: timedelta | None,
) -> Changes:
    """End the working aliases whose store's policy ends them on ``event`` (any, if ``None``).

    Each works on through its grace period counted from ``at`` (``grace``, or
    its store policy's), never beyond its expiry or an earlier end.
    """
    changes: list[AliasChange] = []
    entries: list[TimelineEntry] = []
    for alias in aliases:
        policy = policy_for(alias.store)
        if event is not None and event not in policy.end_on:
            continue
        if alias.status is not AliasStatus.ACTIVE or not alias.usable_at(now):
            continue
        ends_at = min(at + (policy.grace if grace is None else grace), alias.expires_at)
        if alias.ends_at is not None:
            ends_at = min(ends_at, alias.ends_at)
        changes.append(AliasChange(alias.key, AliasStatus.ENDED, ends_at))
        entries.append(alias_event(alias, AliasEvent.ENDED, at, endsAt=iso_utc(ends_at), by=event))
    return Changes(tuple(changes), tuple(entries))


def reactivation(aliases: Iterable[Alias], *, now: datetime, for_: timedelta) -> Changes:
    """Reopen ended aliases until ``now + for_``, never beyond their expiry.

    Revoked and expired aliases stay dead; aliases never ended are left alone.
    """
    changes: list[AliasChange] = []
    entries: list[TimelineEntry] = []
    for alias in aliases:
        if alias.status is AliasStatus.REVOKED or now >= alias.expires_at:
            continue
        if alias.status is not AliasStatus.ENDED and alias.ends_at is None:
            continue  # never ended: nothing to reopen
        until = min(now + for_, alias.expires_at)
        changes.append(AliasChange(alias.key, AliasStatus.ACTIVE, until))
        entries.append(alias_event(alias, AliasEvent.REACTIVATED, now, until=iso_utc(until)))
    return Changes(tuple(changes), tuple(entries))


def revocation(alias: Alias, *, now: datetime, reason: str | None) -> Changes:
    """Revoke ``alias`` now (nothing, if it is revoked already)."""
    if alias.status is AliasStatus.REVOKED:
        return Changes()
    change = AliasChange(alias.key, AliasStatus.REVOKED, alias.ends_at, revoked_at=now)
    return Changes((change,), (alias_event(alias, AliasEvent.REVOKED, now, reason=reason),))


def retirement(alias: Alias, *, now: datetime, why: str) -> Changes:
    """Revoke an alias this tracker can no longer read back (its key or domain is retired)."""
    change = AliasChange(alias.key, AliasStatus.REVOKED, alias.ends_at, revoked_at=now)
    return Changes((change,), (alias_event(alias, AliasEvent.REVOKED, now, reason=why),))
