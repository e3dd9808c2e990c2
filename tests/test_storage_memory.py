"""The storage contract on the in-memory store."""

from __future__ import annotations

import pytest

from ct_alias.storage import MemoryStorage
from ct_alias.testing import StorageContract, make_alias


class TestMemoryStoreContract(StorageContract):
    @pytest.fixture
    def store(self) -> MemoryStorage:
        return MemoryStorage()


def test_len_and_repr_count_records() -> None:
    store = MemoryStorage()
    alias = make_alias()
    store.get_or_create(alias, now=alias.created_at)
    assert len(store) == 1
    assert "1 alias" in repr(store)
    assert alias.real_address not in repr(store)
