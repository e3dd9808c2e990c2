"""ct_alias.testing's helpers do what their users' tests rely on."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ct_alias import ForgedAlias, FrozenClock, MemoryStorage, Policy, StorageError
from ct_alias.testing import T0, CountingStorage, FailingStorage, make_tracker, race

KEY = secrets.token_urlsafe(32)
INDEX_KEY = secrets.token_urlsafe(32)


def test_make_tracker_defaults_to_fresh_secrets_a_frozen_clock_and_memory_storage() -> None:
    one, two = make_tracker(), make_tracker()
    assert isinstance(one.storage, MemoryStorage)
    assert one.storage is not two.storage
    assert one.clock.now() == T0
    alias = one.mask("maria@example.com", conversation="o1")
    assert alias.address.endswith("@ct.example.com")
    with pytest.raises(ForgedAlias):  # fresh keys: another default tracker cannot read it
        two.unmask(alias.address)


def test_make_tracker_with_shared_keys_reads_the_same_aliases() -> None:
    storage = MemoryStorage()
    clock = FrozenClock(T0)
    writer = make_tracker(storage, clock=clock, keys=[KEY], index_key=INDEX_KEY)
    reader = make_tracker(storage, clock=clock, keys=[KEY], index_key=INDEX_KEY)
    alias = writer.mask("maria@example.com", conversation="o1")
    assert reader.unmask(alias.address).real_address == "maria@example.com"


def test_make_tracker_sets_per_store_policies() -> None:
    simple = Policy(domain="ct.example.com", strategy="simple")
    tracker = make_tracker(policies={"shop": simple}, domain="ct.example.com")
    assert tracker.policy_for("shop") is simple
    assert tracker.policy_for("other").strategy == "complex"


def test_counting_storage_counts_each_operation() -> None:
    storage = CountingStorage()
    tracker = make_tracker(storage)
    alias = tracker.mask("maria@example.com", conversation="o1")
    assert storage.calls["get_or_create"] == 1
    storage.calls.clear()
    tracker.unmask(alias.address, reason="support ticket")
    tracker.timeline("o1")
    assert storage.calls["get"] == 1
    assert storage.calls["append"] == 1
    assert storage.calls["entries"] == 1
    assert storage.total == sum(storage.calls.values()) >= 4


def test_failing_storage_fails_only_what_is_named() -> None:
    storage = FailingStorage("get")
    tracker = make_tracker(storage)
    alias = tracker.mask("maria@example.com", conversation="o1")  # get_or_create works
    with pytest.raises(StorageError) as caught:
        tracker.unmask(alias.address)
    assert caught.value.transient
    assert isinstance(caught.value.cause, ConnectionError)
    assert storage.calls["get"] == 1
    storage.failing.clear()
    assert tracker.unmask(alias.address).real_address == "maria@example.com"


def test_race_releases_every_thread_together_and_returns_each_result() -> None:
    waiting = threading.Barrier(6)  # would time out unless all 6 run at once

    def work() -> str:
        waiting.wait(timeout=10)
        return threading.current_thread().name

    names = race(6, work)
    assert len(names) == len(set(names)) == 6


def test_race_reraises_a_thread_failure() -> None:
    def work() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        race(3, work)


def test_a_contract_subclass_with_the_old_store_fixture_still_runs_and_warns(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_backend.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from ct_alias import MemoryStorage
            from ct_alias.testing import StorageContract

            class TestOldName(StorageContract):
                @pytest.fixture
                def store(self):
                    return MemoryStorage()

            class TestNewName(StorageContract):
                @pytest.fixture
                def storage(self):
                    return MemoryStorage()
            """
        )
    )

    def run(*options: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    works = run("-k", "creates_and_gets", "-W", "default::DeprecationWarning")
    assert "2 passed" in works, works
    assert "fixture `store` is deprecated: name it `storage`" in works
    strict = run("-k", "creates_and_gets", "-W", "error::DeprecationWarning")
    assert "1 passed" in strict, strict
    assert "1 error" in strict, strict
