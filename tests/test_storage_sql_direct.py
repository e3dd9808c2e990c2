"""PostgreSQL's read by key sent straight on a pooled psycopg connection (``direct``).

The direct path must return what SQLAlchemy's path returns, be the path taken
unless someone watches statements, count in :class:`~ct_alias.testing.RoundTrips`,
survive a session killed under it (invalidated, run again) and fail with the
store's typed errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from ct_alias.errors import StorageError
from ct_alias.storage import Tombstone
from ct_alias.storage.sql import SQLStorage, direct
from ct_alias.testing import T0, RoundTrips, make_alias

from .sql_servers import Target, clear, unique_name
from .test_storage_sql_round_trips import Killer


@pytest.fixture
def store(postgresql: Target, postgresql_store: SQLStorage) -> Iterator[SQLStorage]:
    clear(postgresql_store)
    with postgresql.open() as opened:
        yield opened


class Statements:
    """A host's statement listener: SQLAlchemy's path is taken while it listens."""

    def __init__(self, store: SQLStorage) -> None:
        self.engine = store.engine
        self.seen: list[str] = []

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        del conn, cursor, args
        self.seen.append(statement.split(None, 1)[0].upper())

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)


def test_direct_reads_return_what_sqlalchemy_returns(store: SQLStorage) -> None:
    alias = make_alias()
    gone = make_alias(created_at=T0 - timedelta(days=400))
    for record in (alias, gone):
        store.get_or_create(record, now=record.created_at)
    assert store.purge(before=T0, now=T0) == 1
    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        fast = [store.get(alias.key), store.get(gone.key), store.get("0" * 32)]
    finally:
        direct.unobserve(store.engine, sent.append)
    assert sent == ["SELECT"] * 3  # the direct path was taken
    with Statements(store) as seen:
        slow = [store.get(alias.key), store.get(gone.key), store.get("0" * 32)]
    assert seen == ["SELECT"] * 3  # SQLAlchemy's path, seen by the host's listener
    assert fast == slow
    assert fast[0] == alias
    assert isinstance(fast[1], Tombstone)
    assert fast[2] is None
    found = fast[0]
    assert isinstance(found, type(alias))
    assert found.created_at.tzinfo is UTC
    assert found.expires_at.tzinfo is UTC


def test_round_trips_count_the_direct_read(store: SQLStorage) -> None:
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    with RoundTrips(store.engine) as trips, Statements(store) as seen:
        store.get(alias.key)
    # A host's listener besides the counter: SQLAlchemy's path, counted once.
    assert (trips.sent, seen) == (["SELECT"], ["SELECT"])
    with RoundTrips(store.engine) as trips:
        store.get(alias.key)
    assert trips.sent == ["SELECT"]


def test_a_session_killed_under_a_direct_read_is_replaced_and_read_again(
    postgresql: Target, store: SQLStorage
) -> None:
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    killer = Killer(postgresql)
    with store.engine.connect() as conn:  # the one pooled connection, reused next
        pid = killer.pid(conn.connection.dbapi_connection)
    sent: list[str] = []

    def kill_first(word: str) -> None:
        sent.append(word)
        if len(sent) == 1:
            killer.kill(pid)

    direct.observe(store.engine, kill_first)
    try:
        assert store.get(alias.key) == alias
    finally:
        direct.unobserve(store.engine, kill_first)
        killer.close()
    assert sent == ["SELECT", "SELECT"]  # lost mid-statement, invalidated, run again


def test_direct_read_errors_are_typed_and_hide_the_key(postgresql: Target) -> None:
    key = "f" * 32
    with postgresql.open(prefix=f"x{unique_name('d')[-8:]}_") as missing:
        with pytest.raises(StorageError) as caught:
            missing.get(key)
    assert caught.value.schema_missing
    assert not caught.value.transient
    assert key not in str(caught.value)
    assert key not in str(caught.value.__cause__)
