"""The storage contract fails broken backends: a test that cannot fail is a defect.

Three backends with the bugs issue #15 found in the wild, each a
:class:`~ct_alias.MemoryStorage` with one method broken: ``scan`` counting
purged records against ``limit`` (short, even empty, pages), a
get-or-create that looks at the slot outside its lock (racy), and an
``update`` that stores ``revoked_at`` only when it returns it. Each passes
the rest of the contract and fails the test written for its bug.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from attrs import evolve

from ct_alias import Alias, FrozenClock, MemoryStorage, Policy, Tracker
from ct_alias.errors import AliasCollision
from ct_alias.storage.base import AliasChange
from ct_alias.testing import StorageContract
from ct_alias.timeline import TimelineEntry

from .conftest import DOMAIN, START

SIGNING_KEY = "fB0sL7qX2nR9vK4mW1cZ8hJ5tG3yD6pA0eU2iO7rN4"
INDEX_KEY = "Tq8Wc3mZ6xN1bV9kL4sH7jG2fD5aP0eU3iO8rY1nM6"
ADDRESS_KEY = "Hs2Kd9Lm4Qx7Vb1Nz6Wc3Rt8Yp5Jf0Ga2Ue7Io4Mn1"


class ShortScanStorage(MemoryStorage):
    """``scan`` takes ``limit`` records, tombstones included, then drops the tombstones."""

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        with self._lock:
            keys = sorted(self._aliases)
            start = 0 if after is None else bisect.bisect_right(keys, after)
            chosen = [self._aliases[k] for k in keys[start : start + limit]]
        return [r for r in chosen if isinstance(r, Alias)]


class RacyStorage(MemoryStorage):
    """Get-or-create reads the slot, then writes, with a round trip in between (no lock)."""

    def __init__(self) -> None:
        super().__init__()
        self._round_trip = threading.Barrier(2)

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        assert candidate.slot is not None
        key = self._slots.get(candidate.slot)
        current = None if key is None else self._aliases.get(key)
        if isinstance(current, Alias) and current.usable_at(now):
            return current, False
        try:  # two callers meet here, as two requests meet at a database
            self._round_trip.wait(timeout=0.2)
        except threading.BrokenBarrierError:
            self._round_trip.reset()
        with self._lock:
            if candidate.key in self._aliases:
                raise AliasCollision()
            self._aliases[candidate.key] = candidate
            self._slots[candidate.slot] = candidate.key
            place = (candidate.store, candidate.conversation)
            self._by_conversation.setdefault(place, []).append(candidate.key)
            for entry in entries:
                self._append(entry)
        return candidate, True


class LossyUpdateStorage(MemoryStorage):
    """``update`` returns what it was asked for but keeps the old ``revoked_at``."""

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        before = {c.key: self._aliases.get(c.key) for c in changes}
        changed, stored = super().update(changes, entries=entries)
        with self._lock:
            for alias in changed:
                old = before[alias.key]
                if isinstance(old, Alias):
                    self._aliases[alias.key] = evolve(alias, revoked_at=old.revoked_at)
        return changed, stored


CONTRACT = StorageContract()


def test_the_contract_fails_short_scan_pages() -> None:
    with pytest.raises(AssertionError, match="limit"):
        CONTRACT.test_scan_pages_are_full_whatever_was_purged(ShortScanStorage())
    with pytest.raises(AssertionError):
        CONTRACT.test_an_empty_scan_page_means_the_end_and_only_the_end(ShortScanStorage())
    CONTRACT.test_scan_and_reseal(ShortScanStorage())  # the contract of before: passed


def test_short_scan_pages_leave_records_behind_in_a_rotation() -> None:
    """What the bug does: the rotation stops at an early empty page and says it is done."""
    storage = ShortScanStorage()
    old = _tracker(storage, [ADDRESS_KEY])
    aliases = [old.mask(f"buyer{i}@example.com", conversation=f"o{i}") for i in range(10)]
    for alias in sorted(aliases, key=lambda a: a.key)[:4]:
        old.revoke(alias)
    assert isinstance(old.clock, FrozenClock)
    old.clock.advance(timedelta(days=1))
    assert old.purge() == 4
    new_key = "Pz5Xc8Vb1Nm4Lk7Jh0Gf3Ds6Aq9We2Rt5Yu8Io1Pa"
    result = _tracker(storage, [ADDRESS_KEY, new_key]).rotate_address_keys(batch_size=3)
    assert result.done
    assert result.resealed < 6  # live records left sealed with the key about to be dropped


def test_the_contract_fails_a_racy_get_or_create() -> None:
    with pytest.raises(AssertionError, match="round"):
        CONTRACT.test_concurrent_get_or_create_yields_one_alias(RacyStorage())


def test_the_contract_fails_an_update_that_loses_a_field() -> None:
    with pytest.raises(AssertionError):
        CONTRACT.test_update_stores_every_field_and_keeps_the_rest(LossyUpdateStorage())


def test_the_memory_storage_passes_what_the_broken_ones_fail() -> None:
    for test in (
        CONTRACT.test_scan_pages_are_full_whatever_was_purged,
        CONTRACT.test_an_empty_scan_page_means_the_end_and_only_the_end,
        CONTRACT.test_concurrent_get_or_create_yields_one_alias,
        CONTRACT.test_update_stores_every_field_and_keeps_the_rest,
    ):
        test(MemoryStorage())


def _tracker(storage: MemoryStorage, address_keys: list[str]) -> Tracker:
    return Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN, ttl=timedelta(days=60)),
        clock=FrozenClock(START),
        index_key=INDEX_KEY,
        address_keys=address_keys,
    )
