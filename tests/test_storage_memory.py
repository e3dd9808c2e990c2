"""The storage contract on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
from attrs import evolve

from ct_alias import (
    MemoryStorage,
    Tracker,
)
from ct_alias.storage import memory as memory_module
from ct_alias.testing import StorageContract, make_alias
from ct_alias.timeline import EntryKind, TimelineEntry

from .hostile import START


class TestMemoryStoreContract(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()


def test_len_and_repr_count_records() -> None:
    store = MemoryStorage()
    alias = make_alias()
    store.get_or_create(alias, now=alias.created_at)
    assert len(store) == 1
    assert "1 alias" in repr(store)
    assert alias.real_address not in repr(store)


_CUSTOMER = "maria@example.com.br"


def test_memory_store_needs_a_slot(tracker: Tracker) -> None:
    alias = tracker.mask(_CUSTOMER, conversation="o1")
    with pytest.raises(ValueError, match="slot"):
        MemoryStorage().get_or_create(evolve(alias, slot=None), now=START)


def test_numbered_entries_keep_every_field() -> None:
    # MemoryStorage copies an entry field by field to number it; a new field must be copied too.
    assert [f.name for f in attrs.fields(TimelineEntry)] == [
        "conversation",
        "kind",
        "name",
        "at",
        "data",
        "dedup_key",
        "seq",
        "store",
    ]
    entry = TimelineEntry(
        "o1", EntryKind.MESSAGE, "inbound", START, {"a": 1}, "dedup", None, store="shop"
    )
    assert memory_module._numbered(entry, 7) == attrs.evolve(entry, seq=7)  # noqa: SLF001


def test_entries_stay_in_time_order_whatever_the_order_of_appends() -> None:
    store = MemoryStorage()
    times = [START + timedelta(seconds=s) for s in (5, 1, 5, 3, 9, 0, 5)]
    for i, at in enumerate(times):
        store.append(TimelineEntry("o1", EntryKind.EVENT, f"e{i}", at, store="shop"))
    entries = store.entries("o1", store="shop")
    assert [(e.at, e.seq) for e in entries] == sorted((e.at, e.seq) for e in entries)
    assert len(entries) == len(times)


def test_current_alias_is_what_get_or_create_would_return() -> None:
    store = MemoryStorage()
    alias = make_alias(created_at=START)
    assert store.current_alias(alias.slot or "", now=START) is None
    store.get_or_create(alias, now=START)
    assert store.current_alias(alias.slot or "", now=START) == alias
    assert store.current_alias(alias.slot or "", now=alias.expires_at) is None
    assert store.current_alias("another slot", now=START) is None
