"""The storage protocol: the few operations the tracker needs from a backend.

A storage keeps two things: **alias records** and **timeline entries**. It never
needs a plaintext address as a key — records are keyed by blind indexes the
tracker computes (:attr:`Alias.key`, :attr:`Alias.slot`) — and it treats
:attr:`Alias.address` and :attr:`Alias.real_address` as opaque text, which the
tracker may have sealed (encrypted) before handing them over.

Every method that writes takes the timeline entries that describe the write
(``entries``) and stores them in the same transaction, so an alias is never
created, ended or revoked without its record on the timeline, nor the other
way round.

A conversation is keyed by **(store, conversation)**: two stores (tenants)
may both number an order ``1001``, and their aliases and timelines never mix.
Every method that reads a conversation takes both, and a timeline entry's
de-duplication key is unique per (store, conversation).

A storage may also keep every store's :class:`~ct_alias.policy.Policy`
(:class:`PolicyStorage`, a separate protocol, so a backend written without it
keeps working: its trackers keep policies in memory, as before), may read a
store's messages across its conversations by time (:class:`MessageScan`, which
:meth:`~ct_alias.Tracker.response_times` pages through when it can), may read
a timeline for the conversation rules without decoding the messages' data
(:class:`RuleScan`), and may
support erasure (:class:`ErasureStorage`, another optional protocol: finding
every alias of one person by its owner key, and tombstoning them while
redacting the timeline entries that name them, all or nothing), and may read a
conversation's aliases and append an entry made from them in one transaction
(:class:`ParticipantsAppend`, which records a message in one call).

``ct_alias.testing.StorageContract`` is the executable specification of this
protocol: a backend that passes it works with the tracker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen

from .._deprecated import renamed
from ..aliases import Alias, AliasStatus, Role
from ..errors import ExpiryReason
from ..timeline import TimelineEntry

__all__ = [
    "AliasChange",
    "Erasure",
    "ErasureStorage",
    "MessageScan",
    "ParticipantsAppend",
    "PolicyStorage",
    "RuleScan",
    "Sealed",
    "SlotLookup",
    "Storage",
    "Tombstone",
]


@frozen
class Tombstone:
    """What is left of a purged alias: no address, only its key and metadata.

    Attributes:
        key: the alias's storage key (a keyed hash of its address).
        conversation: the conversation it belonged to.
        store: the store that issued it.
        role: whose address it masked.
        expired_at: when it stopped working.
        reason: why it stopped working.
        purged_at: when its addresses were removed.
        owner: the owner key of the person it masked (a keyed hash), kept by a
            purge so that a later erasure still finds the timeline entries
            that name them; ``None`` once the person was forgotten (and for
            records stored before owners were kept). Equality ignores it.
    """

    key: str
    conversation: str
    store: str
    role: Role
    expired_at: datetime
    reason: ExpiryReason
    purged_at: datetime
    owner: str | None = field(default=None, repr=False, eq=False)


@frozen
class AliasChange:
    """A lifecycle change of one alias, for :meth:`Storage.update`.

    Attributes:
        key: which alias.
        status: its new stored status.
        ends_at: its new ``ends_at``.
        revoked_at: its new ``revoked_at``.
    """

    key: str
    status: AliasStatus
    ends_at: datetime | None
    revoked_at: datetime | None = None


@frozen
class Sealed:
    """New sealed forms of one alias's addresses, for :meth:`Storage.reseal`.

    Attributes:
        key: which alias.
        address: the alias address in its new stored form.
        real_address: the real address in its new stored form.
    """

    key: str
    address: str
    real_address: str


@frozen
class Erasure:
    """What :meth:`ErasureStorage.erase` writes, all or nothing.

    Attributes:
        tombstones: for each alias record to forget, its tombstone. A live
            alias under the key becomes this tombstone (addresses, slot and
            owner removed); a tombstone already there only loses its owner.
        redactions: timeline entries (with their ``store``, ``conversation``
            and ``seq``) whose ``data`` replaces the stored entry's data.
        entries: new timeline entries to append (the ``forgotten`` records).
    """

    tombstones: tuple[Tombstone, ...] = ()
    redactions: tuple[TimelineEntry, ...] = ()
    entries: tuple[TimelineEntry, ...] = ()


@runtime_checkable
class Storage(Protocol):
    """Where aliases and timelines live. Implementations must be thread-safe."""

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """Atomically return the alias in ``candidate.slot``, or store ``candidate``.

        If the slot holds an alias usable at ``now`` (:meth:`Alias.usable_at`),
        return it and ``False``. Otherwise take the old alias out of the slot
        (its ``slot`` becomes ``None``; the record stays), store ``candidate``
        and ``entries``, and return ``candidate`` and ``True``. Concurrent calls
        for one slot all return the same alias.

        Raises:
            AliasCollision: ``candidate.key`` is taken by another record; nothing was written.
            StorageError: the backend failed; nothing was written.
        """
        ...

    def get(self, key: str) -> Alias | Tombstone | None:
        """The alias (or the tombstone of the purged alias) stored under ``key``."""
        ...

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        """Every alias of ``store``'s ``conversation`` that is not purged, oldest first."""
        ...

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """Apply lifecycle changes and append ``entries``, all or nothing.

        Changes to keys that are unknown or purged are skipped; entries are
        appended as by :meth:`append` (duplicates by ``dedup_key`` skipped).

        Returns:
            The changed aliases as stored now, and the stored entries (with
            their ``seq``; for a duplicate, the entry stored first).
        """
        ...

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """Append one entry, unless one with its store, conversation and ``dedup_key`` exists.

        Returns:
            The stored entry (with its ``seq``) and whether it was new; for a
            duplicate, the entry stored first.
        """
        ...

    def entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """A conversation's entries by (``at``, ``seq``), after a position, at most ``limit``."""
        ...

    def purge(self, *, before: datetime, now: datetime) -> int:
        """Turn aliases that stopped working before ``before`` into tombstones.

        An alias stopped working at its ``revoked_at``, else the earlier of its
        ``expires_at`` and ``ends_at``. Its ``address``, ``real_address`` and
        ``slot`` are removed (its ``owner`` stays, for a later erasure);
        :meth:`get` then returns a :class:`Tombstone` with ``purged_at=now``.

        Returns:
            How many aliases were purged by this call.
        """
        ...

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """Up to ``limit`` aliases (not purged) with a key greater than ``after``, by key.

        Purged records (tombstones) are skipped and never count against
        ``limit``: a page has ``limit`` aliases unless fewer are left. An
        empty page means the end (no alias after ``after``), and only the
        end: key rotation reads pages until the first empty one.
        """
        ...

    def reseal(self, records: Sequence[Sealed]) -> int:
        """Replace the stored address forms of some aliases (after a key rotation).

        Returns:
            How many records were updated (purged or unknown keys are skipped).
        """
        ...


@runtime_checkable
class MessageScan(Protocol):
    """A storage that reads a store's messages by time, across its conversations (optional)."""

    def store_messages(
        self,
        store: str,
        *,
        since: datetime,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[TimelineEntry]:
        """Up to ``limit`` message entries of ``store`` recorded at or after ``since``.

        Ordered by (``at``, ``seq``) over all the store's conversations, and
        after the position ``after`` when it is given (a page's last entry).
        """
        ...


@runtime_checkable
class RuleScan(Protocol):
    """A storage that reads a timeline for the conversation rules more cheaply (optional).

    The rules fold every entry of a conversation (see
    :mod:`ct_alias.rules`) but read only the ``messageId`` of a message; a
    storage that keeps an entry's data as text can leave the rest of a
    message's data undecoded. Without it, the tracker reads
    :meth:`Storage.entries`.
    """

    def rule_entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[TimelineEntry]:
        """What :meth:`Storage.entries` returns, except the data of message entries.

        A message entry's ``data`` holds only those of its ``messageId`` and
        ``sealed`` keys it has, with their values as stored.
        """
        ...


@runtime_checkable
class EntryCount(Protocol):
    """A storage that counts a conversation's timeline entries (optional).

    The conversation rules keep what they folded of a timeline and read only
    what was recorded since (see :mod:`ct_alias.rules`). Every six hours they
    make sure no entry recorded with an older time slipped past them: without
    this protocol by reading the whole timeline again, with it by counting the
    entries, reading the whole timeline again only when the count differs from
    the number of entries they folded.
    """

    def entry_count(self, conversation: str, *, store: str) -> int:
        """How many entries the conversation's timeline holds (all that ``entries`` reads)."""
        ...


@runtime_checkable
class PolicyStorage(Protocol):
    """A storage that also keeps the stores' policies (optional; checked with ``isinstance``).

    A policy is kept as the JSON object of :meth:`Policy.to_data
    <ct_alias.policy.Policy.to_data>`; the storage treats it as opaque. A
    :class:`~ct_alias.tracker.Tracker` on a storage that implements this
    protocol writes :meth:`~ct_alias.tracker.Tracker.set_policy` here and
    re-reads every store's policy at most every ``policy_refresh`` (so every
    tracker on the storage sees a change within that time). A storage without
    it keeps working: its trackers' policies live in their own memory.
    """

    def save_policy(self, store: str, data: Mapping[str, Any]) -> None:
        """Store ``data`` as ``store``'s policy, replacing any earlier one.

        Raises:
            StorageError: the backend failed; nothing was written.
        """
        ...

    def policies(self) -> dict[str, Mapping[str, Any]]:
        """Every stored policy, by store name.

        Raises:
            StorageError: the backend failed.
        """
        ...


@runtime_checkable
class ErasureStorage(Protocol):
    """A storage that can forget a person (optional; checked with ``isinstance``).

    :meth:`Tracker.forget <ct_alias.Tracker.forget>` needs it; on a storage
    without it, it raises :class:`~ct_alias.errors.UnsupportedStorage`.
    Records are found by their ``owner`` (:attr:`Alias.owner
    <ct_alias.Alias.owner>`, :attr:`Tombstone.owner`), which the storage
    keeps as opaque text, as it keeps ``key`` and ``slot``; a purge keeps it.
    """

    def owned(self, owner: str) -> list[Alias | Tombstone]:
        """Every record (alias or tombstone) whose owner is ``owner``, by key.

        Raises:
            StorageError: the backend failed.
        """
        ...

    def unowned(self, *, after: str | None, limit: int) -> list[Alias]:
        """Up to ``limit`` aliases (not purged) without an owner, with a key after ``after``.

        Pages like :meth:`Storage.scan`: by key, never short because of
        other records, an empty page at the end and only there.

        Raises:
            StorageError: the backend failed.
        """
        ...

    def set_owners(self, owners: Mapping[str, str]) -> int:
        """Give aliases (storage key → owner) their owner, where they have none yet.

        Returns:
            How many records were changed (purged, unknown or already owned keys are skipped).

        Raises:
            StorageError: the backend failed; nothing was written.
        """
        ...

    def erase(self, erasure: Erasure) -> tuple[int, int]:
        """Tombstone, redact and append as :class:`Erasure` says, in one transaction.

        Tombstones for unknown keys, and redactions of entries that are not
        stored under their store, conversation and ``seq``, are skipped.

        Returns:
            How many alias records changed, and how many entries were redacted.

        Raises:
            StorageError: the backend failed; nothing was written.
        """
        ...


@runtime_checkable
class ParticipantsAppend(Protocol):
    """A storage that appends an entry made from a conversation's aliases in one call (optional).

    A :class:`~ct_alias.tracker.Tracker` on such a storage records a message
    (:meth:`~ct_alias.tracker.Tracker.record_message`, which the relay calls
    once the next hop took it) with this one call instead of
    :meth:`Storage.aliases` and then :meth:`Storage.append`: one transaction
    instead of two, and the participants the record refers to are those of
    the moment it is written.
    """

    def append_made(
        self,
        conversation: str,
        *,
        store: str,
        make: Callable[[list[Alias]], TimelineEntry],
    ) -> tuple[TimelineEntry, bool]:
        """Append the entry ``make`` builds from the conversation's aliases, read in the same write.

        ``make`` is given what :meth:`Storage.aliases` would return, read in
        the transaction that appends (it may be called again when the
        transaction is run again), and must return an entry of ``store``'s
        ``conversation`` with a ``dedup_key``. ``make`` runs while the write
        transaction is open (on SQL, holding a pooled connection and, on an
        in-memory SQLite database, its only one): it must not call into
        storage, or it would wait for itself. It may run in another thread
        than the caller's (SQLite commits the appends of callers waiting
        together in one transaction, each in a savepoint), so it must not
        depend on thread-local state.

        Returns:
            As :meth:`Storage.append`: the stored entry (the existing one for a
            taken de-duplication key) and whether it was new.

        Raises:
            InvalidArgument: ``make`` returned an entry of another conversation,
                or without a de-duplication key; nothing was written.
            StorageError: the backend failed; nothing was written.
        """
        ...


@runtime_checkable
class SlotLookup(Protocol):
    """A storage that tells cheaply which alias holds a slot (optional; see ``isinstance``).

    A :class:`~ct_alias.tracker.Tracker` on such a storage looks the slot up
    before it mints a new alias, so masking an address that already has a
    usable alias builds nothing (no token, no record, no timeline entry) and
    does not call :meth:`Storage.get_or_create` at all. Worth implementing
    where a lookup costs about nothing (:class:`~ct_alias.storage.MemoryStorage`
    does); a storage whose every call is a round trip is better off letting
    :meth:`Storage.get_or_create` find the alias, as it must anyway.
    """

    def current_alias(self, slot: str, *, now: datetime) -> Alias | None:
        """The alias in ``slot`` if it is usable at ``now`` (what ``get_or_create`` would return).

        ``None`` when the slot is empty or its alias no longer works; the
        tracker then calls :meth:`Storage.get_or_create`, which decides.

        Raises:
            StorageError: the backend failed.
        """
        ...


def stopped_working(alias: Alias) -> tuple[datetime, ExpiryReason]:
    """When and why ``alias`` stops (or stopped) working, ignoring the clock.

    A revoked alias stopped when it was revoked; otherwise it stops at the
    earlier of its expiry and the end of its grace period.
    """
    if alias.status is AliasStatus.REVOKED:
        return alias.revoked_at or alias.created_at, ExpiryReason.REVOKED
    if alias.ends_at is not None and alias.ends_at < alias.expires_at:
        return alias.ends_at, ExpiryReason.ENDED
    return alias.expires_at, ExpiryReason.TTL


#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(__name__, {"AliasStore": "Storage"}, globals())
