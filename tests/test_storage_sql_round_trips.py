"""What the SQL storage costs on the wire, and what it does when a session dies mid-way.

Round trips are counted by :class:`ct_alias.testing.RoundTrips` and pinned
per operation: a change that adds one fails here. Timeline paging is proved to
be an index range on PostgreSQL by its plan. Sessions are killed by the
server (``pg_terminate_backend``, ``KILL``) between operations and at chosen
statements of a transaction, to check the retry rule: a write runs again only
when its ``COMMIT`` was never sent, or when it is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from ct_alias import Tracker
from ct_alias.aliases import Alias, AliasStatus
from ct_alias.errors import StorageError
from ct_alias.storage import AliasChange
from ct_alias.storage.sql import SQLStorage
from ct_alias.storage.sql.statements import NEW_ALIAS_COLUMNS, NEW_ENTRY_COLUMNS, alias_values
from ct_alias.testing import T0, RoundTrips, make_alias, make_entry, make_tracker

from .sql_servers import Target, clear, unique_name

# -- the counter itself ----------------------------------------------------------------


def test_the_counter_sees_pings_begin_statements_and_commit(postgresql: Target) -> None:
    engine = sa.create_engine(postgresql.url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")  # connected: the next checkout pings
        with RoundTrips(engine) as trips:
            with engine.begin() as conn:
                conn.exec_driver_sql("SELECT 1")
            with engine.connect() as conn:  # a read left to the pool's rollback
                conn.exec_driver_sql("select 2")
        transaction = ["PING", "BEGIN", "SELECT", "COMMIT"]
        assert trips.sent == [*transaction, "PING", "BEGIN", "SELECT", "ROLLBACK"]
        trips.reset()
        assert trips.count == 0
        with engine.connect() as conn:  # no longer listening
            conn.exec_driver_sql("SELECT 1")
        assert trips.count == 0
    finally:
        engine.dispose()


def test_the_counter_sees_no_rollback_where_none_is_sent(postgresql: Target) -> None:
    engine = sa.create_engine(postgresql.url, isolation_level="AUTOCOMMIT")
    try:
        with RoundTrips(engine) as trips, engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert trips.sent == ["SELECT"]
    finally:
        engine.dispose()


# -- round trips per operation ------------------------------------------------------------

#: Round trips per tracker operation (before these changes: 7, 2, 2, 6 and 4 on PostgreSQL).
ROUND_TRIPS = {
    "postgresql": {
        "mask (new address)": ["WITH"],
        "mask (existing)": ["WITH"],
        "unmask": ["SELECT"],
        "unmask with a reason": ["SELECT", "INSERT"],
        "timeline()": ["SELECT", "SELECT"],
    },
    # No data-modifying WITH: a read, then a transaction for a new alias (before: 8, 3, 3, 7, 6).
    "mariadb": {
        "mask (new address)": ["SELECT", "BEGIN", "INSERT", "INSERT", "COMMIT"],
        "mask (existing)": ["SELECT"],
        "unmask": ["SELECT"],
        "unmask with a reason": ["SELECT", "INSERT"],
        "timeline()": ["SELECT", "SELECT"],
    },
}


def measure_round_trips(store: SQLStorage, tracker: Tracker) -> dict[str, list[str]]:
    """The statements each tracker operation sends, on a warm pool."""
    conversation = unique_name("trips")
    tracker.mask("warm@example.com", conversation=conversation)  # connect, prepare
    tracker.timeline(conversation)
    found: dict[str, list[str]] = {}

    def count(name: str, operation: Callable[[], object]) -> Any:
        with RoundTrips(store.engine) as trips:
            result = operation()
        found[name] = list(trips.sent)
        return result

    alias = count(
        "mask (new address)", lambda: tracker.mask("maria@example.com", conversation=conversation)
    )
    count("mask (existing)", lambda: tracker.mask("maria@example.com", conversation=conversation))
    count("unmask", lambda: tracker.unmask(alias.address))
    count("unmask with a reason", lambda: tracker.unmask(alias.address, reason="ticket 7"))
    count("timeline()", lambda: tracker.timeline(conversation))
    return found


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_round_trips_per_operation(request: pytest.FixtureRequest, backend: str) -> None:
    found_target: Target = request.getfixturevalue(backend)
    request.getfixturevalue(f"{backend}_store")  # tables exist
    with found_target.open() as store:
        tracker = make_tracker(store)
        assert measure_round_trips(store, tracker) == ROUND_TRIPS[backend]


def test_one_statement_mask_records_the_created_entry(postgresql_store: SQLStorage) -> None:
    clear(postgresql_store)
    tracker = make_tracker(postgresql_store)
    alias = tracker.mask("maria@example.com", conversation="order-1")
    (entry,) = tracker.timeline("order-1").entries
    assert (entry.name, entry.data["ref"]) == ("alias-created", alias.key)
    assert tracker.mask("MARIA@example.com", conversation="order-1") == alias
    assert len(tracker.timeline("order-1").entries) == 1


def test_one_statement_insert_writes_every_column_a_new_alias_has() -> None:
    # A column added to the alias table (a migration) must be written by the
    # one-statement insert too, or be one a new alias leaves empty.
    table = SQLStorage("sqlite://").tables.aliases
    left_empty = {"id", "purged_at", "expired_at", "expiry_reason"}
    assert set(NEW_ALIAS_COLUMNS) == set(table.c.keys()) - left_empty
    assert tuple(alias_values(make_alias())) == NEW_ALIAS_COLUMNS
    timeline = SQLStorage("sqlite://").tables.timeline
    assert set(NEW_ENTRY_COLUMNS) == set(timeline.c.keys()) - {"seq"}


def test_an_unusable_alias_in_the_slot_is_replaced_in_a_transaction(
    postgresql_store: SQLStorage,
) -> None:
    clear(postgresql_store)
    old = make_alias(created_at=T0 - timedelta(days=90))
    postgresql_store.get_or_create(old, now=old.created_at)
    candidate = make_alias(slot=old.slot)
    with RoundTrips(postgresql_store.engine) as trips:
        alias, created = postgresql_store.get_or_create(
            candidate, now=T0, entries=[make_entry("order-1", "alias-created")]
        )
    assert (alias, created) == (candidate, True)
    assert trips.sent[:2] == ["WITH", "BEGIN"]
    assert trips.sent[-1] == "COMMIT"
    retired = postgresql_store.get(old.key)
    assert isinstance(retired, Alias)
    assert retired.slot is None


# -- timeline paging is an index range ------------------------------------------------------


def _plan(conn: sa.Connection, statement: sa.Executable, params: dict[str, Any]) -> Any:
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    sql = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
    return conn.exec_driver_sql(sql, values).scalar()


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    if isinstance(plan, list):
        for item in plan:
            yield from _nodes(item)
    elif isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            yield from _nodes(value)


def test_deep_timeline_pages_are_an_index_range_on_postgresql(
    postgresql_store: SQLStorage,
) -> None:
    clear(postgresql_store)
    store = postgresql_store
    table = store.tables.timeline
    rows = [
        {
            "conversation": conversation,
            "store": "shop",
            "at": T0 + timedelta(seconds=i // 3),  # equal times: seq breaks ties
            "kind": "event",
            "name": "invoiced",
            "data": {"n": i},
        }
        for conversation in ("order-1", "order-2")
        for i in range(3000)
    ]
    with store.engine.begin() as conn:
        conn.execute(table.insert(), rows)
        conn.exec_driver_sql(f'ANALYZE "{store.tables.timeline.schema}"."{table.name}"')
    entries = store.entries("order-1", store="shop")
    deep = entries[-51]
    assert deep.seq is not None
    statement, params = store._sql.entries("shop", "order-1", (deep.at, deep.seq), 20)  # noqa: SLF001
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # the table is small: ask for the index
        plan = _plan(conn, statement, params)
    nodes = list(_nodes(plan))
    scans = [node for node in nodes if "Index Cond" in node]
    assert scans, json.dumps(plan)
    (scan,) = scans
    assert "ROW(" in scan["Index Cond"].upper() or ") > (" in scan["Index Cond"], scan
    assert all(node.get("Rows Removed by Filter", 0) == 0 for node in nodes), json.dumps(plan)
    assert scan["Actual Rows"] <= 20
    assert [e.seq for e in store.entries("order-1", store="shop", after=(deep.at, deep.seq))] == [
        e.seq for e in entries[-50:]
    ]


def test_deep_timeline_pages_are_an_index_range_on_mariadb(mariadb_store: SQLStorage) -> None:
    clear(mariadb_store)
    store = mariadb_store
    table = store.tables.timeline
    rows = [
        {
            "conversation": conversation,
            "store": "shop",
            "at": T0 + timedelta(seconds=i // 3),
            "kind": "event",
            "name": "invoiced",
            "data": {"n": i},
        }
        for conversation in ("order-1", "order-2")
        for i in range(3000)
    ]
    with store.engine.begin() as conn:
        conn.execute(table.insert(), rows)
        conn.exec_driver_sql(f"ANALYZE TABLE {table.name}")
    deep = store.entries("order-1", store="shop")[-51]
    assert deep.seq is not None
    statement, params = store._sql.entries("shop", "order-1", (deep.at, deep.seq), 20)  # noqa: SLF001
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=store.engine.dialect)
    values = {
        name: value.replace(tzinfo=None) if name == "at" else value
        for name, value in (compiled.construct_params(params) or {}).items()
    }
    with store.engine.connect() as conn:
        found = conn.exec_driver_sql(f"ANALYZE FORMAT=JSON {compiled}", values).scalar()
    assert isinstance(found, str)
    plan = json.loads(found)["query_block"]["nested_loop"][0]["table"]
    assert plan["access_type"] == "range", plan
    assert plan["used_key_parts"][:3] == ["store", "conversation", "at"], plan
    assert plan["r_rows"] <= 20, plan  # read: the page, not the entries before it


def test_deep_timeline_pages_are_an_index_range_on_sqlite(tmp_path: Any) -> None:
    with SQLStorage(f"sqlite:///{tmp_path / 'ct.db'}") as store:
        store.upgrade()
        statement, _ = store._sql.entries("shop", "order-1", (T0, 5), 20)  # noqa: SLF001
        assert isinstance(statement, sa.ClauseElement)
        compiled = statement.compile(dialect=store.engine.dialect)
        with store.engine.connect() as conn:
            names = getattr(compiled, "positiontup", None) or ()
            values = tuple(0 for _ in names)  # the plan ignores values
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values).all()
        detail = " ".join(str(row[-1]) for row in plan)
        assert "timeline_order_ix (store=? AND conversation=? AND at>?)" in detail, detail


# -- sessions killed by the server: the retry rule ---------------------------------------


class Killer:
    """Ends the session of a store's connection from an admin connection."""

    def __init__(self, target: Target) -> None:
        self.backend = target.name
        self.admin = sa.create_engine(target.url, isolation_level="AUTOCOMMIT")

    def pid(self, dbapi: Any) -> int:
        if self.backend == "postgresql":
            return int(dbapi.info.backend_pid)
        return int(dbapi.thread_id())

    def kill(self, pid: int) -> None:
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                gone = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            else:
                conn.exec_driver_sql(f"KILL {pid}")
                processes = "information_schema.processlist"
                gone = sa.text(f"SELECT count(*) FROM {processes} WHERE id = :pid")
            for _ in range(10_000):  # until the server has really ended it
                if not conn.execute(gone, {"pid": pid}).scalar():
                    return
        raise AssertionError(f"session {pid} still alive")

    def at(self, store: SQLStorage, first_word: str, *, nth: int = 1) -> list[str]:
        """Kill the session just before its ``nth`` statement starting with ``first_word``."""
        seen: list[str] = []

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            del cursor, args
            word = statement.lstrip().split(None, 1)[0].upper()
            seen.append(word)
            if word == first_word and seen.count(word) == nth:
                self.kill(self.pid(conn.connection.dbapi_connection))

        event.listen(store.engine, "before_cursor_execute", before)
        return seen

    def close(self) -> None:
        self.admin.dispose()


@pytest.fixture(params=["postgresql", "mariadb"])
def killer_store(request: pytest.FixtureRequest) -> Iterator[tuple[Killer, SQLStorage]]:
    found: Target = request.getfixturevalue(request.param)
    clear(request.getfixturevalue(f"{request.param}_store"))
    killer = Killer(found)
    with found.open() as store:
        yield killer, store
    killer.close()


def _entries(store: SQLStorage, conversation: str) -> int:
    return len(store.entries(conversation, store="shop"))


def test_a_session_killed_between_operations_is_replaced_without_an_error(
    killer_store: tuple[Killer, SQLStorage],
) -> None:
    killer, store = killer_store
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    with store.engine.connect() as conn:
        pid = killer.pid(conn.connection.dbapi_connection)
    killer.kill(pid)
    # Not idempotent (no dedup key), so never retried: the closed session is
    # seen at checkout, before anything is sent.
    store.append(make_entry(alias.conversation))
    assert _entries(store, alias.conversation) == 1


def test_a_transaction_killed_before_commit_runs_again(
    killer_store: tuple[Killer, SQLStorage],
) -> None:
    killer, store = killer_store
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    seen = killer.at(store, "INSERT")
    change = AliasChange(alias.key, AliasStatus.REVOKED, ends_at=None, revoked_at=T0)
    changed, stored = store.update([change], entries=[make_entry(alias.conversation)])
    assert seen.count("BEGIN") == 2  # the first attempt died at its INSERT
    assert [a.status for a in changed] == [AliasStatus.REVOKED]
    assert len(stored) == 1
    assert _entries(store, alias.conversation) == 1


def test_a_write_killed_at_commit_is_not_run_again_unless_idempotent(
    killer_store: tuple[Killer, SQLStorage],
) -> None:
    killer, store = killer_store
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    seen = killer.at(store, "COMMIT")
    change = AliasChange(alias.key, AliasStatus.REVOKED, ends_at=None, revoked_at=T0)
    with pytest.raises(StorageError) as caught:
        store.update([change], entries=[make_entry(alias.conversation)])
    assert caught.value.transient
    assert seen.count("BEGIN") == 1
    # The server never saw the COMMIT: nothing happened, and a retry by the caller is safe.
    assert _entries(store, alias.conversation) == 0
    # Idempotent work (a dedup key) killed at COMMIT runs again.
    seen = killer.at(store, "COMMIT")
    store.update([change], entries=[make_entry(alias.conversation, dedup_key="mid:1")])
    assert seen.count("BEGIN") == 2
    assert _entries(store, alias.conversation) == 1


def test_the_one_statement_mask_killed_before_it_is_sent_runs_again(
    postgresql: Target, postgresql_store: SQLStorage
) -> None:
    clear(postgresql_store)
    killer = Killer(postgresql)
    try:
        with postgresql.open() as store:
            store.get("0" * 32)  # a pooled connection
            seen = killer.at(store, "WITH")
            alias = make_alias()
            found, created = store.get_or_create(
                alias, now=T0, entries=[make_entry(alias.conversation, "alias-created")]
            )
            assert (found, created) == (alias, True)
            assert seen == ["WITH", "WITH"]
            assert _entries(store, alias.conversation) == 1
    finally:
        killer.close()
