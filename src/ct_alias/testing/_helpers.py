"""Helpers for tests of code that uses ct_alias (ours and yours); no pytest needed."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..aliases import Alias
from ..clock import Clock, FrozenClock
from ..errors import StorageError
from ..policy import Policy
from ..storage.base import AliasChange, Erasure, Sealed, Storage, Tombstone
from ..storage.memory import MemoryStorage
from ..timeline import TimelineEntry
from ..tracker import Tracker

__all__ = ["T0", "CountingStorage", "FailingStorage", "make_tracker", "race"]

T = TypeVar("T")

#: The time test records are created at, and test clocks start from.
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_tracker(
    storage: Storage | None = None,
    *,
    clock: Clock | None = None,
    keys: Iterable[str | bytes] | None = None,
    domain: str = "ct.example.com",
    default_policy: Policy | None = None,
    policies: Mapping[str, Policy] | None = None,
    index_key: str | bytes | None = None,
    **options: Any,
) -> Tracker:
    """A tracker for a test, with fresh random secrets unless you give them.

    Args:
        storage: default a new :class:`~ct_alias.MemoryStorage`.
        clock: default a :class:`~ct_alias.FrozenClock` at :data:`T0`.
        keys: the signing keys; default one random key (pass the same keys to
            two trackers that must read each other's aliases).
        domain: the alias domain of the default policy.
        default_policy: default ``Policy(domain=domain)``.
        policies: per-store policies (store name → policy).
        index_key: default a random key.
        **options: more :class:`~ct_alias.Tracker` arguments (``address_keys``…).
    """
    tracker = Tracker(
        storage=storage if storage is not None else MemoryStorage(),
        keys=list(keys) if keys is not None else [secrets.token_urlsafe(32)],
        default_policy=default_policy if default_policy is not None else Policy(domain=domain),
        clock=clock if clock is not None else FrozenClock(T0),
        index_key=index_key if index_key is not None else secrets.token_urlsafe(32),
        **options,
    )
    for store, policy in (policies or {}).items():
        tracker.set_policy(store, policy)
    return tracker


class CountingStorage(MemoryStorage):
    """A real :class:`~ct_alias.MemoryStorage` that counts the calls made to it.

    Attributes:
        calls: how many times each protocol operation was called, by name.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        """Every call so far."""
        return sum(self.calls.values())

    def called(self, operation: str) -> None:
        """Count a call of ``operation`` (every protocol method calls it first)."""
        self.calls[operation] += 1

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """Count, then see :meth:`Storage.get_or_create <ct_alias.Storage.get_or_create>`."""
        self.called("get_or_create")
        return super().get_or_create(candidate, now=now, entries=entries)

    def current_alias(self, slot: str, *, now: datetime) -> Alias | None:
        """Count, then see :meth:`ct_alias.storage.SlotLookup.current_alias`."""
        self.called("current_alias")
        return super().current_alias(slot, now=now)

    def get(self, key: str) -> Alias | Tombstone | None:
        """Count, then see :meth:`Storage.get <ct_alias.Storage.get>`."""
        self.called("get")
        return super().get(key)

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        """Count, then see :meth:`Storage.aliases <ct_alias.Storage.aliases>`."""
        self.called("aliases")
        return super().aliases(conversation, store=store)

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """Count, then see :meth:`Storage.update <ct_alias.Storage.update>`."""
        self.called("update")
        return super().update(changes, entries=entries)

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """Count, then see :meth:`Storage.append <ct_alias.Storage.append>`."""
        self.called("append")
        return super().append(entry)

    def entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """Count, then see :meth:`Storage.entries <ct_alias.Storage.entries>`."""
        self.called("entries")
        return super().entries(conversation, store=store, after=after, limit=limit)

    def purge(self, *, before: datetime, now: datetime) -> int:
        """Count, then see :meth:`Storage.purge <ct_alias.Storage.purge>`."""
        self.called("purge")
        return super().purge(before=before, now=now)

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """Count, then see :meth:`Storage.scan <ct_alias.Storage.scan>`."""
        self.called("scan")
        return super().scan(after=after, limit=limit)

    def reseal(self, records: Sequence[Sealed]) -> int:
        """Count, then see :meth:`Storage.reseal <ct_alias.Storage.reseal>`."""
        self.called("reseal")
        return super().reseal(records)

    def owned(self, owner: str) -> list[Alias | Tombstone]:
        """Count, then see :meth:`ErasureStorage.owned <ct_alias.storage.ErasureStorage.owned>`."""
        self.called("owned")
        return super().owned(owner)

    def unowned(self, *, after: str | None, limit: int) -> list[Alias]:
        """Count, then see :meth:`ct_alias.storage.ErasureStorage.unowned`."""
        self.called("unowned")
        return super().unowned(after=after, limit=limit)

    def set_owners(self, owners: Mapping[str, str]) -> int:
        """Count, then see :meth:`ct_alias.storage.ErasureStorage.set_owners`."""
        self.called("set_owners")
        return super().set_owners(owners)

    def erase(self, erasure: Erasure) -> tuple[int, int]:
        """Count, then see :meth:`ErasureStorage.erase <ct_alias.storage.ErasureStorage.erase>`."""
        self.called("erase")
        return super().erase(erasure)


class FailingStorage(CountingStorage):
    """A :class:`CountingStorage` whose chosen operations fail like a lost database.

    Name the operations that fail in :attr:`failing` (``"get"``, ``"update"``…):
    each call of one raises a transient :class:`~ct_alias.errors.StorageError`
    (caused by a :class:`ConnectionError`) before touching anything; the
    failed call is counted too.

    Attributes:
        failing: the operations that fail now.
    """

    def __init__(self, *failing: str) -> None:
        super().__init__()
        self.failing: set[str] = set(failing)

    def called(self, operation: str) -> None:
        """Count a call of ``operation``, then fail it if it is one of :attr:`failing`.

        Raises:
            StorageError: it is failing.
        """
        super().called(operation)
        if operation in self.failing:
            raise StorageError(operation, ConnectionError("lost"), transient=True)


def race(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released together by a barrier.

    Returns:
        Every thread's result (in no particular order).

    Raises:
        BaseException: the first failure of any thread, re-raised here.
    """
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
