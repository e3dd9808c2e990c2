"""The names renamed when the backend became *storage* still work, and warn."""

from __future__ import annotations

import importlib
import secrets

import pytest

import ct_alias
from ct_alias import ConfigurationError, MemoryStorage, Policy, Tracker
from ct_alias.storage import base, memory, registry

KEY = secrets.token_urlsafe(32)

RENAMED = [
    ("ct_alias", "AliasStore", "Storage"),
    ("ct_alias", "MemoryStore", "MemoryStorage"),
    ("ct_alias", "store_from_url", "storage_from_url"),
    ("ct_alias", "register_store_scheme", "register_storage_scheme"),
    ("ct_alias.storage", "AliasStore", "Storage"),
    ("ct_alias.storage", "MemoryStore", "MemoryStorage"),
    ("ct_alias.storage", "SQLStore", "SQLStorage"),
    ("ct_alias.storage", "store_from_url", "storage_from_url"),
    ("ct_alias.storage", "register_store_scheme", "register_storage_scheme"),
    ("ct_alias.storage.base", "AliasStore", "Storage"),
    ("ct_alias.storage.memory", "MemoryStore", "MemoryStorage"),
    ("ct_alias.storage.sql", "SQLStore", "SQLStorage"),
    ("ct_alias.storage.registry", "StoreFactory", "StorageFactory"),
    ("ct_alias.storage.registry", "store_from_url", "storage_from_url"),
    ("ct_alias.storage.registry", "register_store_scheme", "register_storage_scheme"),
]


@pytest.mark.parametrize(("module", "old", "new"), RENAMED)
def test_old_name_warns_and_is_the_new_object(module: str, old: str, new: str) -> None:
    namespace = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: use .*{new}"):
        value = getattr(namespace, old)
    assert value is getattr(namespace, new)


def test_unknown_names_are_still_attribute_errors() -> None:
    for namespace in (ct_alias, ct_alias.storage, base, memory, registry):
        with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
            namespace.Nothing  # noqa: B018


def test_from_import_of_an_old_name_warns() -> None:
    with pytest.warns(DeprecationWarning, match="MemoryStore is deprecated"):
        from ct_alias import MemoryStore
    assert MemoryStore is MemoryStorage


def test_tracker_store_keyword_warns_and_sets_the_storage() -> None:
    storage = MemoryStorage()
    with pytest.warns(DeprecationWarning, match=r"Tracker\(store=...\) is deprecated"):
        tracker = Tracker(store=storage, keys=[KEY], default_policy=Policy(domain="ct.example.com"))
    assert tracker.storage is storage
    with pytest.warns(DeprecationWarning, match=r"Tracker.store is deprecated"):
        assert tracker.store is storage


def test_tracker_needs_exactly_one_storage() -> None:
    policy = Policy(domain="ct.example.com")
    with pytest.raises(ConfigurationError, match="needs storage="):
        Tracker(keys=[KEY], default_policy=policy)
    with pytest.raises(ConfigurationError, match="storage= only"):
        Tracker(storage=MemoryStorage(), store=MemoryStorage(), keys=[KEY], default_policy=policy)
