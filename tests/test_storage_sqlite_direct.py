"""SQLite's hot reads sent straight on a pooled ``sqlite3`` connection (``direct``).

The read by key and the read of a conversation's aliases must return what
SQLAlchemy's path returns (datetimes stored as text come back aware UTC),
be the path taken unless someone watches statements, count in
:class:`~ct_alias.testing.RoundTrips`, and fail with the store's typed errors,
parameters hidden. Writes never take it on SQLite (they would not commit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ct_alias.aliases import Alias, AliasStatus
from ct_alias.errors import StorageError
from ct_alias.storage import AliasChange, Tombstone
from ct_alias.storage.sql import SQLStorage, direct
from ct_alias.testing import T0, RoundTrips, make_alias

from .sql_statements import Statements


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    url = f"sqlite:///{tmp_path / 'direct.db'}" if request.param == "file" else "sqlite://"
    with SQLStorage(url) as opened:
        opened.upgrade()
        yield opened


def test_direct_reads_return_what_sqlalchemy_returns(store: SQLStorage) -> None:
    alias = make_alias()
    ended = make_alias()
    gone = make_alias(created_at=T0 - timedelta(days=400))
    for record in (alias, ended, gone):
        store.get_or_create(record, now=record.created_at)
    assert store.purge(before=T0, now=T0) == 1
    end = AliasChange(ended.key, AliasStatus.ENDED, T0 + timedelta(days=3), T0)
    store.update([end])
    keys = [alias.key, ended.key, gone.key, "0" * 32]

    def read() -> tuple[list[Alias | Tombstone | None], list[list[Alias]]]:
        return [store.get(key) for key in keys], [
            store.aliases("order-1", store="shop"),
            store.aliases("no-such-order", store="shop"),
        ]

    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        fast = read()
    finally:
        direct.unobserve(store.engine, sent.append)
    assert sent == ["SELECT"] * 6  # the direct path was taken
    with Statements(store) as seen:
        slow = read()
    assert seen == ["SELECT"] * 6  # SQLAlchemy's path, seen by the host's listener
    assert fast == slow
    got, (participants, nobody) = fast
    assert got[0] == alias
    assert isinstance(got[2], Tombstone)
    assert got[2].purged_at.tzinfo is UTC
    assert got[3] is None
    assert participants == [alias, got[1]]
    assert nobody == []
    found = got[1]
    assert isinstance(found, Alias)
    assert found.status is AliasStatus.ENDED
    for moment in (found.created_at, found.expires_at, found.ends_at, found.revoked_at):
        assert moment is not None
        assert moment.tzinfo is UTC
    assert (found.ends_at, found.revoked_at) == (T0 + timedelta(days=3), T0)


def test_round_trips_count_the_direct_reads(store: SQLStorage) -> None:
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    with RoundTrips(store.engine) as trips:
        store.get(alias.key)
        store.aliases("order-1", store="shop")
    assert trips.sent == ["SELECT", "SELECT"]


def test_writes_never_go_direct_on_sqlite(store: SQLStorage) -> None:
    assert store.engine.dialect.name == "sqlite"
    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        alias, created = store.get_or_create(make_alias(), now=T0)
    finally:
        direct.unobserve(store.engine, sent.append)
    assert created
    assert sent == []  # its read and its write went through SQLAlchemy
    assert store.get(alias.key) == alias  # committed: a new connection sees it


def test_direct_read_errors_are_typed_and_hide_the_parameters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    with SQLStorage(url) as made:
        made.upgrade()
    key = "f" * 32
    with SQLStorage(url, prefix="missing_") as missing:
        for read in (lambda: missing.get(key), lambda: missing.aliases(key, store="shop")):
            with pytest.raises(StorageError) as caught:
                read()
            assert caught.value.schema_missing
            assert not caught.value.transient
            assert key not in str(caught.value)
            assert key not in str(caught.value.__cause__)


def test_threads_read_directly_while_others_write(store: SQLStorage) -> None:
    made = [make_alias() for _ in range(40)]
    failures: list[BaseException] = []

    def write() -> None:
        for alias in made:
            store.get_or_create(alias, now=T0)

    def read() -> None:
        try:
            for _ in range(200):
                for alias in store.aliases("order-1", store="shop"):
                    assert store.get(alias.key) == alias
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(store.aliases("order-1", store="shop")) == len(made)


def reads_returned_as_reset(store: SQLStorage) -> list[bool]:
    """Two direct reads; for each connection returned, whether the pool was told it was reset."""
    states: list[bool] = []

    def reset(dbapi_connection: object, record: object, state: Any) -> None:
        del dbapi_connection, record
        states.append(state.transaction_was_reset)

    alias = make_alias()
    store.get_or_create(alias, now=T0)
    event.listen(store.engine.pool, "reset", reset)
    try:
        assert store.get(alias.key) == alias
        assert store.aliases(alias.conversation, store=alias.store) == [alias]
    finally:
        event.remove(store.engine.pool, "reset", reset)
    return states


def test_direct_reads_return_their_connection_without_a_rollback(store: SQLStorage) -> None:
    # no transaction open after a read: nothing for the pool to roll back
    assert reads_returned_as_reset(store) == [True, True]


def test_without_sqlalchemys_reset_return_connections_are_rolled_back_as_usual(
    store: SQLStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the return without a rollback uses a private SQLAlchemy method: when a release
    # lacks it, connections go back the ordinary way (rolled back), and nothing else changes
    monkeypatch.setattr(direct, "_CHECKIN_RESET", None)
    assert reads_returned_as_reset(store) == [False, False]


def test_the_return_without_a_rollback_is_sqlalchemys_own() -> None:
    # pinned: if SQLAlchemy renames it, the fallback above is what runs, and this says so
    assert direct._CHECKIN_RESET is not None  # noqa: SLF001
