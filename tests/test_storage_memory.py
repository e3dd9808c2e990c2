"""The storage contract on the in-memory store."""

from __future__ import annotations

import pytest
from attrs import evolve

from ct_alias import (
    MemoryStorage,
    Tracker,
)
from ct_alias.testing import StorageContract, make_alias

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
