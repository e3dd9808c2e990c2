"""In-memory, thread-safe storage, for tests and short-lived processes."""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import evolve

from .._deprecated import renamed
from ..aliases import Alias
from ..errors import AliasCollision, InvalidArgument
from ..timeline import EntryKind, TimelineEntry
from .base import AliasChange, Erasure, Sealed, Tombstone, stopped_working

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """Keeps aliases and timelines in dictionaries guarded by one lock.

    Nothing survives the process. It implements the whole
    :class:`~ct_alias.storage.Storage` protocol (with
    :class:`~ct_alias.storage.PolicyStorage` and
    :class:`~ct_alias.storage.ErasureStorage`) and passes
    :class:`ct_alias.testing.StorageContract`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[str, Alias | Tombstone] = {}
        self._slots: dict[str, str] = {}
        self._by_conversation: dict[tuple[str, str], list[str]] = {}
        self._timelines: dict[tuple[str, str], list[TimelineEntry]] = {}
        self._dedup: dict[tuple[str, str, str], TimelineEntry] = {}
        self._seq = itertools.count(1)
        self._policies: dict[str, Mapping[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<MemoryStorage with {len(self._aliases)} alias(es)>"

    def __len__(self) -> int:
        """How many alias records (tombstones included) are stored."""
        return len(self._aliases)

    def upgrade(self) -> int:
        """Nothing to create in memory; returns 0 (so ``storage_from_url(url).upgrade()`` works)."""
        return 0

    # -- policies ------------------------------------------------------------

    def save_policy(self, store: str, data: Mapping[str, Any]) -> None:
        """See :meth:`PolicyStorage.save_policy <ct_alias.storage.PolicyStorage.save_policy>`."""
        copy = json.loads(json.dumps(dict(data)))
        with self._lock:
            self._policies[store] = copy

    def policies(self) -> dict[str, Mapping[str, Any]]:
        """See :meth:`PolicyStorage.policies <ct_alias.storage.PolicyStorage.policies>`."""
        with self._lock:
            return {store: json.loads(json.dumps(data)) for store, data in self._policies.items()}

    # -- aliases -------------------------------------------------------------

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """See :meth:`Storage.get_or_create`."""
        slot = candidate.slot
        if slot is None:
            raise InvalidArgument("candidate", "a candidate alias needs a slot")
        with self._lock:
            key = self._slots.get(slot)
            if key is not None:
                current = self._aliases[key]
                if isinstance(current, Alias):
                    if current.usable_at(now):
                        return current, False
                    self._aliases[key] = evolve(current, slot=None)
                del self._slots[slot]
            if candidate.key in self._aliases:
                raise AliasCollision()
            self._aliases[candidate.key] = candidate
            self._slots[slot] = candidate.key
            place = (candidate.store, candidate.conversation)
            keys = self._by_conversation.get(place)
            if keys is None:
                self._by_conversation[place] = [candidate.key]
            else:
                keys.append(candidate.key)
            for entry in entries:
                self._append(entry)
            return candidate, True

    def current_alias(self, slot: str, *, now: datetime) -> Alias | None:
        """See :meth:`SlotLookup.current_alias <ct_alias.storage.SlotLookup.current_alias>`."""
        # No lock: each read is atomic, and a record is replaced, never removed.
        key = self._slots.get(slot)
        if key is None:
            return None
        record = self._aliases.get(key)
        return record if isinstance(record, Alias) and record.usable_at(now) else None

    def get(self, key: str) -> Alias | Tombstone | None:
        """See :meth:`Storage.get`."""
        return self._aliases.get(key)

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        """See :meth:`Storage.aliases`."""
        with self._lock:
            keys = self._by_conversation.get((store, conversation), ())
            records = [self._aliases[k] for k in keys]
        aliases = [r for r in records if isinstance(r, Alias)]
        aliases.sort(key=lambda alias: alias.created_at)  # stable: ties keep insertion order
        return aliases

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """See :meth:`Storage.update`."""
        changed = []
        with self._lock:
            for change in changes:
                current = self._aliases.get(change.key)
                if not isinstance(current, Alias):
                    continue
                new = evolve(
                    current,
                    status=change.status,
                    ends_at=change.ends_at,
                    revoked_at=change.revoked_at,
                )
                self._aliases[change.key] = new
                changed.append(new)
            stored = [self._append(entry)[0] for entry in entries]
        return changed, stored

    def purge(self, *, before: datetime, now: datetime) -> int:
        """See :meth:`Storage.purge`."""
        purged = 0
        with self._lock:
            for key, record in self._aliases.items():
                if not isinstance(record, Alias):
                    continue
                when, reason = stopped_working(record)
                if when >= before:
                    continue
                if record.slot is not None and self._slots.get(record.slot) == key:
                    del self._slots[record.slot]
                self._aliases[key] = Tombstone(
                    key=key,
                    conversation=record.conversation,
                    store=record.store,
                    role=record.role,
                    expired_at=when,
                    reason=reason,
                    purged_at=now,
                    owner=record.owner,
                )
                purged += 1
        return purged

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """See :meth:`Storage.scan`."""
        with self._lock:
            keys = sorted(k for k, r in self._aliases.items() if isinstance(r, Alias))
            start = 0 if after is None else bisect.bisect_right(keys, after)
            chosen = [self._aliases[k] for k in keys[start : start + limit]]
        return [r for r in chosen if isinstance(r, Alias)]

    def reseal(self, records: Sequence[Sealed]) -> int:
        """See :meth:`Storage.reseal`."""
        done = 0
        with self._lock:
            for sealed in records:
                current = self._aliases.get(sealed.key)
                if isinstance(current, Alias):
                    self._aliases[sealed.key] = evolve(
                        current, address=sealed.address, real_address=sealed.real_address
                    )
                    done += 1
        return done

    # -- erasure -------------------------------------------------------------

    def owned(self, owner: str) -> list[Alias | Tombstone]:
        """See :meth:`ErasureStorage.owned <ct_alias.storage.ErasureStorage.owned>`."""
        with self._lock:
            found = [r for r in self._aliases.values() if r.owner == owner]
        return sorted(found, key=lambda record: record.key)

    def unowned(self, *, after: str | None, limit: int) -> list[Alias]:
        """See :meth:`ErasureStorage.unowned <ct_alias.storage.ErasureStorage.unowned>`."""
        with self._lock:
            keys = sorted(
                k for k, r in self._aliases.items() if isinstance(r, Alias) and r.owner is None
            )
            start = 0 if after is None else bisect.bisect_right(keys, after)
            chosen = [self._aliases[k] for k in keys[start : start + limit]]
        return [r for r in chosen if isinstance(r, Alias)]

    def set_owners(self, owners: Mapping[str, str]) -> int:
        """See :meth:`ErasureStorage.set_owners <ct_alias.storage.ErasureStorage.set_owners>`."""
        done = 0
        with self._lock:
            for key, owner in owners.items():
                current = self._aliases.get(key)
                if isinstance(current, Alias) and current.owner is None:
                    self._aliases[key] = evolve(current, owner=owner)
                    done += 1
        return done

    def erase(self, erasure: Erasure) -> tuple[int, int]:
        """See :meth:`ErasureStorage.erase <ct_alias.storage.ErasureStorage.erase>`."""
        changed = redacted = 0
        # JSON copies first: data that cannot be stored fails before anything changed
        redactions = [
            (entry, json.loads(json.dumps(dict(entry.data)))) for entry in erasure.redactions
        ]
        with self._lock:
            for tomb in erasure.tombstones:
                current = self._aliases.get(tomb.key)
                if current is None:
                    continue
                if isinstance(current, Alias):
                    if current.slot is not None and self._slots.get(current.slot) == tomb.key:
                        del self._slots[current.slot]
                    self._aliases[tomb.key] = evolve(tomb, owner=None)
                else:
                    self._aliases[tomb.key] = evolve(current, owner=None)
                changed += 1
            for entry, data in redactions:
                redacted += self._redact(entry, data)
            for entry in erasure.entries:
                self._append(entry)
        return changed, redacted

    def _redact(self, entry: TimelineEntry, data: dict[str, Any]) -> int:
        timeline = self._timelines.get((entry.store, entry.conversation), [])
        for i, stored in enumerate(timeline):
            if stored.seq is not None and stored.seq == entry.seq:
                new = evolve(stored, data=data)
                timeline[i] = new
                if stored.dedup_key is not None:
                    self._dedup[(stored.store, stored.conversation, stored.dedup_key)] = new
                return 1
        return 0

    # -- timeline ------------------------------------------------------------

    def _append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        if entry.dedup_key is not None:
            existing = self._dedup.get((entry.store, entry.conversation, entry.dedup_key))
            if existing is not None:
                return existing, False
        stored = _numbered(entry, next(self._seq))
        timeline = self._timelines.setdefault((entry.store, entry.conversation), [])
        if not timeline or timeline[-1].at <= stored.at:
            # the usual case, and what insort would do: sequence numbers only grow, so
            # (at, seq) of the last entry is below the new one's whenever its ``at`` is
            timeline.append(stored)
        else:
            bisect.insort(timeline, stored, key=_order)
        if entry.dedup_key is not None:
            self._dedup[(entry.store, entry.conversation, entry.dedup_key)] = stored
        return stored, True

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """See :meth:`Storage.append`."""
        with self._lock:
            return self._append(entry)

    def entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """See :meth:`Storage.entries`."""
        with self._lock:
            timeline = self._timelines.get((store, conversation), [])
            start = 0 if after is None else bisect.bisect_right(timeline, after, key=_order)
            stop = None if limit is None else start + limit
            return timeline[start:stop]

    def entry_count(self, conversation: str, *, store: str) -> int:
        """See :meth:`EntryCount.entry_count <ct_alias.storage.EntryCount.entry_count>`."""
        with self._lock:
            return len(self._timelines.get((store, conversation), ()))

    def store_messages(
        self,
        store: str,
        *,
        since: datetime,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[TimelineEntry]:
        """See :meth:`MessageScan.store_messages` (a scan of the store's timelines)."""
        start = (since, -1) if after is None else max(after, (since, -1))
        with self._lock:
            found = [
                entry
                for (entry_store, _), timeline in self._timelines.items()
                if entry_store == store
                for entry in timeline[bisect.bisect_right(timeline, start, key=_order) :]
                if entry.kind is EntryKind.MESSAGE
            ]
        return heapq.nsmallest(limit, found, key=_order)


def _numbered(entry: TimelineEntry, seq: int) -> TimelineEntry:
    """``entry`` with its sequence number: ``evolve(entry, seq=seq)``, without its introspection."""
    return TimelineEntry(
        entry.conversation,
        entry.kind,
        entry.name,
        entry.at,
        entry.data,
        entry.dedup_key,
        seq,
        store=entry.store,
    )


def _order(entry: TimelineEntry) -> tuple[datetime, int]:
    return entry.at, entry.seq or 0


#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(__name__, {"MemoryStore": "MemoryStorage"}, globals())
