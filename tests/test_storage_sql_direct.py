"""PostgreSQL's hot statements sent straight on a pooled psycopg connection (``direct``).

The read by key and the one-statement mask must return what SQLAlchemy's path
returns, be the path taken unless someone watches statements, count in
:class:`~ct_alias.testing.RoundTrips`, survive a session killed under them
(invalidated, run again) and fail with the store's typed errors, parameters
hidden; values are converted (or refused) as their column types say.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from ct_alias.aliases import Alias
from ct_alias.errors import StorageError
from ct_alias.storage import Tombstone
from ct_alias.storage.sql import SQLStorage, direct
from ct_alias.storage.sql.engine import ClosedByServer
from ct_alias.storage.sql.statements import alias_values
from ct_alias.testing import T0, RoundTrips, make_alias, make_entry

from .sql_servers import Target, clear, unique_name
from .sql_statements import Statements
from .test_storage_sql_round_trips import Killer


@pytest.fixture
def store(postgresql: Target, postgresql_store: SQLStorage) -> Iterator[SQLStorage]:
    clear(postgresql_store)
    with postgresql.open() as opened:
        yield opened


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


# -- the one-statement mask ----------------------------------------------------------------


def _mask(store: SQLStorage, candidate: Alias, entries: int) -> tuple[Alias, bool]:
    made = [make_entry(candidate.conversation, "alias-created")][:entries]
    return store.get_or_create(candidate, now=T0, entries=made)


@pytest.mark.parametrize("entries", [0, 1])
def test_direct_masks_return_what_sqlalchemy_returns(store: SQLStorage, entries: int) -> None:
    def new_then_taken() -> list[tuple[Alias, bool]]:
        alias = make_alias()
        return [_mask(store, alias, entries), _mask(store, make_alias(slot=alias.slot), entries)]

    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        fast = new_then_taken()
    finally:
        direct.unobserve(store.engine, sent.append)
    assert sent == ["WITH", "WITH"]  # the direct path, one statement each
    with Statements(store) as seen:
        slow = new_then_taken()
    assert seen == ["WITH", "WITH"]  # SQLAlchemy's path, seen by the host's listener
    for (new, created), (again, created_again) in (fast, slow):
        assert (created, created_again) == (True, False)
        assert again == new  # the slot's alias, read back in full
        assert again.created_at.tzinfo is UTC
        assert store.get(new.key) == new
    # one "created" entry per alias inserted, none for the slot found taken
    assert len(store.entries(fast[0][0].conversation, store="shop")) == 2 * entries


def test_an_echo_engine_masks_through_sqlalchemy(store: SQLStorage) -> None:
    sent: list[str] = []
    store.engine.echo = True
    direct.observe(store.engine, sent.append)
    try:
        alias = make_alias()
        assert _mask(store, alias, 1) == (alias, True)
    finally:
        direct.unobserve(store.engine, sent.append)
        store.engine.echo = False
    assert sent == []  # echo logs every statement: none went around it
    assert store.get(alias.key) == alias


def test_a_session_killed_under_a_direct_mask_is_replaced_and_the_mask_sent_again(
    postgresql: Target, store: SQLStorage
) -> None:
    store.get("0" * 32)  # the one pooled connection, reused next
    killer = Killer(postgresql)
    with store.engine.connect() as conn:
        pid = killer.pid(conn.connection.dbapi_connection)
    sent: list[str] = []

    def kill_first(word: str) -> None:
        sent.append(word)
        if len(sent) == 1:
            killer.kill(pid)

    alias = make_alias()
    direct.observe(store.engine, kill_first)
    try:
        assert _mask(store, alias, 1) == (alias, True)
    finally:
        direct.unobserve(store.engine, kill_first)
        killer.close()
    assert sent == ["WITH", "WITH"]  # lost mid-statement, invalidated, run again
    assert len(store.entries(alias.conversation, store=alias.store)) == 1


def test_direct_mask_errors_are_typed_and_hide_the_parameters(postgresql: Target) -> None:
    alias = make_alias()
    with postgresql.open(prefix=f"x{unique_name('m')[-8:]}_") as missing:
        with pytest.raises(StorageError) as caught:
            _mask(missing, alias, 1)
    assert caught.value.schema_missing
    assert not caught.value.transient
    for value in (alias.key, str(alias.slot), alias.address, alias.real_address):
        assert value not in str(caught.value)
        assert value not in str(caught.value.__cause__)


def test_values_a_column_refuses_are_refused_on_the_direct_path(store: SQLStorage) -> None:
    naive = make_alias(created_at=datetime(2026, 1, 1))
    not_json = make_entry(naive.conversation, "alias-created", data={"bad": {1, 2}})
    alias = make_alias()
    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        with pytest.raises(StorageError) as naive_refused:
            store.get_or_create(naive, now=T0)
        with pytest.raises(StorageError) as not_json_refused:
            store.get_or_create(alias, now=T0, entries=[not_json])
    finally:
        direct.unobserve(store.engine, sent.append)
    assert sent == []  # refused before anything was sent
    for caught in (naive_refused, not_json_refused):
        assert not caught.value.transient
    assert "naive" in str(naive_refused.value)
    assert naive.real_address not in str(naive_refused.value)
    assert store.get(naive.key) is None
    assert store.get(alias.key) is None


def test_direct_statements_convert_what_their_column_types_convert(store: SQLStorage) -> None:
    compile_ = store._transactions.direct.compile  # noqa: SLF001
    by_key = compile_(store._sql.by_key)  # noqa: SLF001
    assert (by_key.verb, by_key.conversions) == ("SELECT", ())
    mask = compile_(store._sql.mask_statements[1])  # noqa: SLF001
    assert mask.verb == "WITH"
    converted = {name for name, _ in mask.conversions}
    assert converted == {"created_at", "expires_at", "ends_at", "revoked_at", "e_at", "e_data"}
    brt = timezone(timedelta(hours=-3))
    values = {"key": "k", "created_at": T0.astimezone(brt), "ends_at": None, "e_data": {"ref": "k"}}
    params = mask.bind({**values, "expires_at": T0, "revoked_at": None, "e_at": T0})
    assert params["key"] == "k"  # untouched
    assert params["ends_at"] is None
    assert params["created_at"] == T0
    assert params["created_at"].utcoffset() == timedelta(0)  # the column's UTC
    assert params["e_data"] == '{"ref":"k"}'  # the column's JSON text


def test_statements_with_values_of_their_own_are_not_sent_directly(store: SQLStorage) -> None:
    with pytest.raises(ValueError, match="built-in value"):
        store._transactions.direct.compile(sa.select(sa.literal("x")))  # noqa: SLF001


def test_a_pooled_connection_keeps_one_cursor_per_direct_statement(
    postgresql: Target, store: SQLStorage
) -> None:
    alias = make_alias()
    _mask(store, alias, 1)
    store.get(alias.key)
    store.get(alias.key)
    with store.engine.connect() as conn:  # the one pooled connection
        dbapi = conn.connection.dbapi_connection
        cursors = dict(conn.connection.info[direct._CURSORS])  # noqa: SLF001
    assert len(cursors) == 2  # the mask's and the read's, reused
    assert all(cursor.connection is dbapi for cursor in cursors.values())
    for cursor in cursors.values():
        cursor.close()  # closed behind the store's back: replaced, not used
    assert store.get(alias.key) == alias
    killer = Killer(postgresql)  # a replaced connection starts with no cursors
    try:
        killer.kill(killer.pid(dbapi))
    finally:
        killer.close()
    assert store.get(alias.key) == alias
    with store.engine.connect() as conn:
        assert conn.connection.dbapi_connection is not dbapi
        (cursor,) = conn.connection.info[direct._CURSORS].values()  # noqa: SLF001
        assert cursor.connection is conn.connection.dbapi_connection


# -- what psycopg is given, and how connections go back ---------------------------------------


def test_direct_statements_give_psycopg_their_parameters_in_order(store: SQLStorage) -> None:
    compile_ = store._transactions.direct.compile  # noqa: SLF001
    mask = compile_(store._sql.mask_statements[1])  # noqa: SLF001
    # psycopg turns named parameters into positional ones at every call: sent in order
    assert "%(" not in mask.text
    assert mask.text.count("%s") == len(mask.positions)
    assert mask.positions.count("slot") == 2  # read, then inserted
    assert mask.query == mask.text.encode()
    values = {**alias_values(make_alias()), "e_dedup_key": None}
    values.update({f"e_{name}": None for name in ("conversation", "store", "kind", "name")})
    values.update({"e_at": T0, "e_data": {"ref": "k"}})
    sent = mask.parameters(values)
    assert isinstance(sent, list)
    assert sent[mask.positions.index("e_data")] == '{"ref":"k"}'  # converted, in its place
    slots = [sent[i] for i, name in enumerate(mask.positions) if name == "slot"]
    assert slots == [values["slot"]] * 2
    # an escaped "%" in the text stays one "%" for the server
    table = store.tables.aliases
    percent = compile_(
        sa.select(sa.literal_column("'50%'").label("share"), table.c.key).where(
            table.c.key == sa.bindparam("key")
        )
    )
    alias = make_alias()
    _mask(store, alias, 0)
    assert store._transactions.direct.fetch_one(percent, {"key": alias.key}) == ("50%", alias.key)  # noqa: SLF001


def test_direct_statements_return_their_connection_without_a_rollback(
    store: SQLStorage,
) -> None:
    states: list[bool] = []

    def reset(dbapi_connection: object, record: object, state: Any) -> None:
        del dbapi_connection, record
        states.append(state.transaction_was_reset)

    alias = make_alias()
    store.get("0" * 32)  # a pooled connection
    sa.event.listen(store.engine.pool, "reset", reset)
    try:
        assert _mask(store, alias, 1) == (alias, True)
        assert store.get(alias.key) == alias
        # idle after its one statement: nothing to roll back, the pool's reset skipped
        assert states == [True, True]
        # a connection returned in a transaction is still rolled back
        fairy = store.engine.raw_connection()
        connection: Any = fairy.dbapi_connection
        connection.cursor().execute("BEGIN")
        direct._release(fairy, connection, direct._psycopg_idle, psycopg.Error)  # noqa: SLF001
        assert states == [True, True, False]
        assert connection.info.transaction_status == 0  # rolled back: idle in the pool
    finally:
        sa.event.remove(store.engine.pool, "reset", reset)


def test_a_direct_statement_meets_a_closed_connection_once_then_checks(
    postgresql: Target, store: SQLStorage
) -> None:
    alias = make_alias()
    _mask(store, alias, 1)
    fairies = [store.engine.raw_connection() for _ in range(3)]  # three pooled sessions
    killer = Killer(postgresql)
    try:
        for fairy in fairies:
            killer.kill(killer.pid(fairy.dbapi_connection))
    finally:
        killer.close()
        for fairy in fairies:
            fairy.close()
    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        # The first attempt takes a pooled connection unchecked (no poll(), which lets other
        # threads in), meets the closed session and is discarded; the second is checked.
        assert store.get(alias.key) == alias
        assert sent == ["SELECT", "SELECT"]
        again = make_alias()
        assert _mask(store, again, 1) == (again, True)
        assert sent[2:] == ["WITH", "WITH"]
    finally:
        direct.unobserve(store.engine, sent.append)
    assert len(store.entries(again.conversation, store=again.store)) == 2


def test_the_closed_by_server_check_is_skipped_once_and_only_when_asked() -> None:
    mine, theirs = socket.socketpair()
    theirs.close()  # the server's end gone: readable (end of file)

    class Driver:
        def fileno(self) -> int:
            return mine.fileno()

    check = ClosedByServer()
    try:
        with pytest.raises(sa.exc.DisconnectionError):
            check(Driver(), None, None)
        check.skip(once=True)
        check(Driver(), None, None)  # skipped: the checkout asked for
        with pytest.raises(sa.exc.DisconnectionError):
            check(Driver(), None, None)  # a checkout nested in it, or the next, is checked
        check.skip(once=True)
        check.skip(once=False)
        with pytest.raises(sa.exc.DisconnectionError):
            check(Driver(), None, None)
    finally:
        mine.close()
