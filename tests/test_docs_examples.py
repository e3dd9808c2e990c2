"""The importable examples of the documentation (docs/examples/), tested like code.

The ``.rst`` pages themselves are collected by Sybil (see the root conftest.py);
this module covers what they only show with ``literalinclude``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

import ct_alias
from ct_alias import FrozenClock, Policy, Role, Tracker
from ct_alias.storage import Storage
from ct_alias.testing import StorageContract

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _load(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` (docs/ is not a package)."""
    qualified = f"ct_alias_docs_examples.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, DOCS / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


SQLite3Store = _load("custom_store").SQLite3Store


# -- the custom backend of docs/storage.rst -------------------------------------------


class TestSQLite3Store(StorageContract):
    """The example backend passes the storage contract suite."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        store = SQLite3Store(tmp_path / "aliases.db")
        store.create_schema()
        yield store
        store.close()


def test_the_example_store_works_with_a_tracker(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = SQLite3Store(tmp_path / "aliases.db")
    store.create_schema()
    tracker = Tracker(
        storage=store,
        keys=["a-long-random-secret"],
        default_policy=Policy(domain="ct.example.com"),
        clock=clock,
        index_key="ME9Kx6M37dIO0nU9c5RtZLlrHdMNyHYLAPMt-J488Kk",
    )
    alias = tracker.mask("maria@example.com", conversation="order-1")
    store.close()  # survives a new connection: it is on disk
    assert tracker.unmask(alias.address.upper(), reason="test") == alias
    shop = tracker.mask("vendas@loja.example.com", conversation="order-1", role=Role.STORE)
    tracker.notify("order-1", "payment-approved", subject="Pagamento aprovado", text="Ok.")
    clock.advance(timedelta(days=61))
    assert tracker.purge() == 2
    assert tracker.timeline("order-1").events[0].name == "alias-created"
    assert tracker.aliases("order-1") == []
    assert shop.address not in repr(store)


# -- the API reference covers the public API -------------------------------------------


def test_api_reference_documents_every_public_name() -> None:
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    directive = re.compile(r"^\.\. auto\w+:: ct_alias\.(\w+)\s*$", flags=re.MULTILINE)
    documented = set(directive.findall(text))
    missing = sorted(set(ct_alias.__all__) - documented)
    assert not missing, f"add these to docs/api.rst: {missing}"
