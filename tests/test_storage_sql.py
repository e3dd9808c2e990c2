"""The SQL store on SQLite, PostgreSQL and MariaDB, and choosing a store by URL.

PostgreSQL and MariaDB are the real servers of ``tests/sql_servers.py``; each
test session works in its own schema/database and drops it at the end.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

import ct_alias.storage as storage
from ct_alias import FrozenClock, Policy, Tracker
from ct_alias.aliases import Alias, AliasStatus
from ct_alias.errors import AliasCollision, ConfigurationError, MissingExtra, StorageError
from ct_alias.storage import AliasChange, MemoryStorage, Storage
from ct_alias.storage.registry import available_schemes, register_storage_scheme, storage_from_url
from ct_alias.storage.sql import (
    SCHEMA_VERSION,
    SQLStorage,
    build_metadata,
    metadata,
    upgrade,
)
from ct_alias.storage.sql.migrations import STEPS
from ct_alias.storage.sql.transactions import fate
from ct_alias.testing import T0, StorageContract, make_alias, make_entry
from ct_alias.timeline import EntryKind, TimelineEntry

from .sql_servers import Target, clear, unique_name

SRC = str(Path(__file__).resolve().parents[1] / "src")
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}


# -- the contract on every backend ---------------------------------------------------


class TestSQLiteFileContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        with SQLStorage(f"sqlite:///{tmp_path / 'ct.db'}") as store:
            store.upgrade()
            yield store


class TestSQLiteMemoryContract(StorageContract):
    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        store = storage_from_url("sqlite://")
        assert isinstance(store, SQLStorage)
        store.upgrade()
        yield store
        store.close()


class TestSQLiteWithoutReturningContract(StorageContract):
    """SQLite before 3.35 has no RETURNING: inserts fall back to the row count."""

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        with SQLStorage("sqlite://") as store:
            store.upgrade()  # connected: the dialect knows the library's version now
            store.engine.dialect.insert_returning = False
            yield store


class TestPostgreSQLContract(StorageContract):
    @pytest.fixture
    def storage(self, postgresql_store: SQLStorage) -> Storage:
        clear(postgresql_store)
        return postgresql_store


class TestMariaDBContract(StorageContract):
    @pytest.fixture
    def storage(self, mariadb_store: SQLStorage) -> Storage:
        clear(mariadb_store)
        return mariadb_store


# -- importing without the extras ----------------------------------------------------


def run_python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=CHILD_ENV,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_ct_alias_does_not_import_sqlalchemy() -> None:
    out = run_python(
        """
        import sys
        import ct_alias, ct_alias.storage, ct_alias.storage.registry
        from ct_alias.storage import storage_from_url
        storage_from_url("memory://")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy"))
        """
    )
    assert out.strip() == "[]"


def test_missing_sqlalchemy_names_the_extra() -> None:
    out = run_python(
        """
        import sys
        sys.modules["sqlalchemy"] = None  # as if it were not installed
        from ct_alias.errors import ConfigurationError, MissingExtra
        from ct_alias.storage import storage_from_url
        import ct_alias.storage as storage
        for attempt in (lambda: storage_from_url("sqlite://"), lambda: storage.SQLStorage):
            try:
                attempt()
            except MissingExtra as exc:
                assert isinstance(exc, ImportError) and isinstance(exc, ConfigurationError)
                print(exc.extra, exc.package, "ct-alias[sql]" in str(exc))
        """
    )
    assert out.split("\n")[:2] == ["sql sqlalchemy True", "sql sqlalchemy True"]


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://u@db.invalid/x", "psycopg", "postgresql"),
        ("mysql://u@db.invalid/x", "pymysql", "mysql"),
    ],
)
def test_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra) as info:
        storage_from_url(url)
    assert (info.value.extra, info.value.package) == (extra, module)


# -- storage_from_url and the scheme registry --------------------------------------------


def test_memory_url() -> None:
    assert isinstance(storage_from_url("memory://"), MemoryStorage)
    with pytest.raises(ConfigurationError):
        storage_from_url("memory://somewhere")
    with pytest.raises(ConfigurationError):
        storage_from_url("memory://", prefix="x_")


@pytest.mark.parametrize(
    ("url", "backend", "driver"),
    [
        ("sqlite:///{tmp}/ct.db", "sqlite", "pysqlite"),
        ("sqlite://", "sqlite", "pysqlite"),
        ("postgresql://u:secret@db.invalid/shop", "postgresql", "psycopg"),
        ("postgres://u:secret@db.invalid/shop", "postgresql", "psycopg"),
        ("postgresql+psycopg://u:secret@db.invalid/shop", "postgresql", "psycopg"),
        ("mysql://u:secret@db.invalid/shop", "mysql", "pymysql"),
        ("mysql+pymysql://u:secret@db.invalid/shop", "mysql", "pymysql"),
        ("mariadb://u:secret@db.invalid/shop", "mariadb", "pymysql"),
    ],
)
def test_sql_urls(url: str, backend: str, driver: str, tmp_path: Path) -> None:
    store = storage_from_url(url.format(tmp=tmp_path))  # no I/O: the hosts do not exist
    assert isinstance(store, SQLStorage)
    assert store.engine.dialect.name == backend
    assert store.engine.driver == driver
    assert "secret" not in repr(store)
    if backend in ("mysql", "mariadb"):
        assert store.engine.url.query["charset"] == "utf8mb4"
    assert not (tmp_path / "ct.db").exists()


def test_sql_url_options(tmp_path: Path) -> None:
    store = storage_from_url(f"sqlite:///{tmp_path / 'ct.db'}", prefix="shop_", pool_size=2)
    assert isinstance(store, SQLStorage)
    assert store.tables.aliases.name == "shop_aliases"


@pytest.mark.parametrize("url", ["nosuch://u:secret@h/x", "NoSuch://x"])
def test_unknown_scheme_lists_the_known_ones(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        storage_from_url(url)
    message = str(info.value)
    assert "'nosuch'" in message
    assert "memory, " in message
    assert "postgresql" in message
    assert "secret" not in message


@pytest.mark.parametrize("url", ["ct.db", "://x", ""])
def test_not_a_url(url: str) -> None:
    with pytest.raises(ConfigurationError):
        storage_from_url(url)


def test_sql_url_errors() -> None:
    with pytest.raises(ConfigurationError):
        SQLStorage("sqlite:///x.db", prefix="Bad-Prefix")
    with pytest.raises(ConfigurationError):
        SQLStorage("not a url")
    with pytest.raises(ConfigurationError, match="unknown database"):
        SQLStorage("nosuchdb+x://u:secret@h/x")
    with pytest.raises(ConfigurationError):
        SQLStorage(sa.create_engine("sqlite://"), pool_size=3)


def test_register_store_scheme() -> None:
    scheme = f"t{unique_name('x').replace('_', '-')}"
    opened: list[tuple[str, dict[str, Any]]] = []

    def factory(url: str, /, **options: Any) -> Storage:
        opened.append((url, options))
        return MemoryStorage()

    register_storage_scheme(scheme, factory)
    assert scheme in available_schemes()
    assert isinstance(storage_from_url(f"{scheme}://bucket", region="eu"), MemoryStorage)
    assert opened == [(f"{scheme}://bucket", {"region": "eu"})]
    with pytest.raises(ConfigurationError, match="already registered"):
        register_storage_scheme(scheme, factory)
    register_storage_scheme(scheme, lambda url, /, **options: MemoryStorage(), replace=True)
    storage_from_url(f"{scheme}://bucket")
    assert len(opened) == 1
    for bad in ("", "Upper", "9x", "with space", "x" * 40):
        with pytest.raises(ConfigurationError):
            register_storage_scheme(bad, factory)
    with pytest.raises(ConfigurationError):
        register_storage_scheme(f"{scheme}-2", "not callable")  # type: ignore[arg-type]


# -- schema ------------------------------------------------------------------------------


def test_metadata_for_hosts() -> None:
    assert set(metadata.tables) == {
        "ct_alias_aliases",
        "ct_alias_timeline",
        "ct_alias_schema_version",
        "ct_alias_policies",
    }
    other = build_metadata("shop_", schema="tenant")
    assert set(other.tables) == {
        "tenant.shop_aliases",
        "tenant.shop_timeline",
        "tenant.shop_schema_version",
        "tenant.shop_policies",
    }
    assert storage.metadata is metadata
    assert storage.SQLStorage is SQLStorage


def test_upgrade_is_idempotent_concurrent_and_recorded(target: Target) -> None:
    prefix = f"u{unique_name('x')[8:]}_"  # fresh tables, version 0
    with target.open(prefix=prefix) as store:
        assert store.schema_version() == 0
        results = []

        def run() -> None:
            results.append(upgrade(target.url, prefix=prefix, **target.options))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [SCHEMA_VERSION] * 3
        assert store.upgrade() == SCHEMA_VERSION
        assert upgrade(store) == SCHEMA_VERSION
        assert store.schema_version() == SCHEMA_VERSION
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(store.tables.versions)).all()
        assert [row.version for row in rows] == [step.version for step in STEPS]
        assert rows[0].applied_at.utcoffset() == timedelta(0)
        alias = make_alias()
        assert store.get_or_create(alias, now=T0) == (alias, True)
        store.tables.metadata.drop_all(store.engine)


def test_missing_tables_are_a_permanent_storage_error(tmp_path: Path) -> None:
    sa.create_engine(f"sqlite:///{tmp_path / 'ct.db'}").connect().close()  # a file, no tables
    with SQLStorage(f"sqlite:///{tmp_path / 'ct.db'}") as store:
        with pytest.raises(StorageError) as info:
            store.get("0" * 32)
    assert not info.value.transient
    assert info.value.schema_missing
    assert isinstance(info.value.cause, sa.exc.OperationalError)
    assert info.value.__cause__ is info.value.cause


# -- errors and robustness ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://postgres@127.0.0.1:1/test", "mysql+pymysql://root@127.0.0.1:1/test"],
)
def test_unreachable_server_is_a_transient_storage_error(url: str) -> None:
    store = SQLStorage(url, connect_args={"connect_timeout": 2})  # no I/O yet
    with pytest.raises(StorageError) as info:
        store.get_or_create(make_alias(), now=T0)
    assert info.value.transient
    assert not isinstance(info.value, AliasCollision)
    assert isinstance(info.value.cause, sa.exc.OperationalError)
    assert info.value.__cause__ is info.value.cause
    assert "creating an alias" in str(info.value)


def test_failed_creation_leaves_nothing_behind(sql_store: SQLStorage) -> None:
    alias = make_alias()
    good = make_entry()
    bad = make_entry(data={"not json": object()})  # fails after the alias row is inserted
    with pytest.raises(StorageError) as info:
        sql_store.get_or_create(alias, now=T0, entries=[good, bad])
    assert not info.value.transient
    assert info.value.__cause__ is info.value.cause
    assert sql_store.get(alias.key) is None
    assert sql_store.entries("order-1", store="shop") == []
    assert sql_store.get_or_create(make_alias(slot=alias.slot), now=T0)[1]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_value_the_database_refuses_fails_the_whole_transaction(
    request: pytest.FixtureRequest, backend: str
) -> None:
    store: SQLStorage = request.getfixturevalue(f"{backend}_store")
    clear(store)
    alias = make_alias()
    too_long = make_entry(name="n" * 65)  # VARCHAR(64)
    with pytest.raises(StorageError) as info:
        store.get_or_create(alias, now=T0, entries=[make_entry(), too_long])
    assert not info.value.transient
    assert isinstance(info.value.cause, sa.exc.DBAPIError)
    assert store.get(alias.key) is None
    assert store.entries("order-1", store="shop") == []
    store.get_or_create(alias, now=T0)
    ended = AliasChange(alias.key, AliasStatus.ENDED, T0)
    with pytest.raises(StorageError):
        store.update([ended], entries=[too_long])
    assert store.get(alias.key) == alias


def test_failed_update_changes_nothing(sql_store: SQLStorage) -> None:
    alias = make_alias()
    sql_store.get_or_create(alias, now=T0)
    change = AliasChange(alias.key, AliasStatus.REVOKED, None, T0)
    with pytest.raises(StorageError):
        sql_store.update([change], entries=[make_entry(data={"bad": {1, 2}})])
    assert sql_store.get(alias.key) == alias
    assert sql_store.entries("order-1", store="shop") == []


def test_naive_datetimes_are_refused(sql_store: SQLStorage) -> None:
    naive = make_alias(created_at=datetime(2026, 1, 1))
    with pytest.raises(StorageError):
        sql_store.get_or_create(naive, now=T0)


def test_other_time_zones_are_stored_as_utc(sql_store: SQLStorage) -> None:
    brt = timezone(timedelta(hours=-3))
    alias = make_alias(created_at=T0.astimezone(brt))
    sql_store.get_or_create(alias, now=T0)
    stored = sql_store.get(alias.key)
    assert isinstance(stored, Alias)
    assert stored.created_at == T0
    assert stored.created_at.tzinfo is UTC


def _backend_pid(store: SQLStorage) -> int:
    query = (
        "SELECT pg_backend_pid()"
        if store.engine.dialect.name == "postgresql"
        else "SELECT CONNECTION_ID()"
    )
    with store.engine.connect() as conn:
        pid = conn.exec_driver_sql(query).scalar()
    assert isinstance(pid, int)
    return pid


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_reconnects_after_the_server_drops_the_connection(
    request: pytest.FixtureRequest, backend: str
) -> None:
    found: Target = request.getfixturevalue(backend)
    request.getfixturevalue(f"{backend}_store")  # tables exist
    admin = sa.create_engine(found.url, isolation_level="AUTOCOMMIT")
    with found.open() as store:
        alias = make_alias(conversation=unique_name("reconnect"))
        store.get_or_create(alias, now=T0)
        for _ in range(2):  # one pooled connection, killed twice
            pid = _backend_pid(store)
            with admin.connect() as conn:
                if backend == "postgresql":
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                else:
                    conn.exec_driver_sql(f"KILL {pid}")
            assert store.get(alias.key) == alias
            assert _backend_pid(store) != pid
        assert store.append(make_entry(alias.conversation))[1]
    admin.dispose()


def test_serialisation_failures_are_retried(
    postgresql: Target, postgresql_store: SQLStorage, caplog: pytest.LogCaptureFixture
) -> None:
    # Under SERIALIZABLE, racing inserts into one slot fail with SQLSTATE 40001:
    # the store runs the transaction again and everyone gets the one alias.
    caplog.set_level(logging.DEBUG, logger="ct_alias.storage.sql")
    with postgresql.open(isolation_level="SERIALIZABLE") as store:
        for _ in range(5):
            slot = make_alias().slot
            results: list[tuple[Alias, bool]] = []
            barrier = threading.Barrier(8)

            def run(
                slot: str | None = slot,
                results: list[tuple[Alias, bool]] = results,
                barrier: threading.Barrier = barrier,
            ) -> None:
                barrier.wait()
                results.append(store.get_or_create(make_alias(slot=slot), now=T0))

            threads = [threading.Thread(target=run) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len({alias.key for alias, _ in results}) == 1
            assert sum(created for _, created in results) == 1
            if "retrying creating an alias" in caplog.text:
                break
    assert "retrying creating an alias" in caplog.text


def _driver_error(dialect: str, code: str | int) -> sa.exc.DBAPIError:
    if dialect == "postgresql":
        orig: Exception = psycopg.errors.lookup(str(code))("driver message")
    else:
        orig = pymysql.err.OperationalError(code, "driver message")
    return sa.exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("dialect", "code", "expected"),
    [
        ("postgresql", "40001", "retry"),
        ("postgresql", "40P01", "retry"),
        ("postgresql", "57P01", "transient"),
        ("postgresql", "08006", "transient"),
        ("postgresql", "23505", "permanent"),
        ("postgresql", "22001", "permanent"),
        ("mysql", 1213, "retry"),
        ("mysql", 1205, "retry"),
        ("mysql", 2013, "transient"),
        ("mysql", 1927, "transient"),
        ("mysql", 1062, "permanent"),
        ("mysql", 1406, "permanent"),
    ],
)
def test_driver_errors_are_classified_by_code(dialect: str, code: str | int, expected: str) -> None:
    assert fate(_driver_error(dialect, code), dialect) == expected


def test_upgrade_creates_a_missing_postgresql_schema(postgresql: Target) -> None:
    schema = unique_name("schema")
    admin = sa.create_engine(postgresql.url, isolation_level="AUTOCOMMIT")
    try:
        assert upgrade(postgresql.url, schema=schema) == SCHEMA_VERSION
        with SQLStorage(postgresql.url, schema=schema) as store:
            alias = make_alias()
            store.get_or_create(alias, now=T0)
            assert store.get(alias.key) == alias
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def test_host_engine(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ct.db'}")
    first = SQLStorage(engine)
    second = SQLStorage(engine, prefix="other_")
    first.upgrade()
    second.upgrade()
    alias = make_alias()
    assert first.get_or_create(alias, now=T0) == (alias, True)
    assert first.append(make_entry())[1]
    assert second.get(alias.key) is None
    first.close()  # leaves the host's engine alone
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(first.tables.aliases)).scalar() == 1
        )
        conn.execute(first.tables.timeline.delete())  # the host's own transactions still work
        conn.commit()
    assert first.entries("order-1", store="shop") == []
    engine.dispose()


def test_in_memory_sqlite_is_one_database_for_all_threads() -> None:
    with SQLStorage("sqlite://") as store:
        store.upgrade()
        slot = make_alias().slot
        results: list[tuple[Alias, bool]] = []

        def run() -> None:
            results.append(store.get_or_create(make_alias(slot=slot), now=T0))

        threads = [threading.Thread(target=run) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({alias.key for alias, _ in results}) == 1
        assert sum(created for _, created in results) == 1


def test_context_manager_and_reuse_after_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ct.db'}"
    with SQLStorage(url) as store:
        store.upgrade()
        alias = make_alias()
        store.get_or_create(alias, now=T0)
    assert store.get(alias.key) == alias  # reconnects after close()
    store.dispose()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def memory_sqlite() -> Iterator[SQLStorage]:
    with SQLStorage("sqlite://") as store:
        store.upgrade()
        yield store


@given(
    data=st.dictionaries(st.text(), json_values, max_size=5),
    at=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
    conversation=st.text(min_size=1, max_size=255),
)
def test_entries_round_trip_any_json_and_time(
    memory_sqlite: SQLStorage, data: dict[str, Any], at: datetime, conversation: str
) -> None:
    clear(memory_sqlite)
    entry = TimelineEntry(conversation, EntryKind.MESSAGE, "inbound", at, data, store="shop")
    stored, _ = memory_sqlite.append(entry)
    (read,) = memory_sqlite.entries(conversation, store="shop")
    assert read == evolve(stored, at=at.astimezone(UTC))
    assert read.at.tzinfo is UTC


# -- several processes -----------------------------------------------------------------------

CHILD_PRELUDE = """
import json, sys
from ct_alias.storage.sql import SQLStorage
from ct_alias.storage.sql.migrations import STEPS
from ct_alias.storage.sql.transactions import fate
from ct_alias.testing import T0, make_alias, make_entry
url, options, slot, conversation = json.loads(sys.argv[1])
store = SQLStorage(url, **options)
"""


def child_args(target: Target, slot: str, conversation: str) -> str:
    return json.dumps([target.url, target.options, slot, conversation])


def test_aliases_written_by_one_process_are_read_by_another(target: Target) -> None:
    slot = make_alias().slot
    assert slot is not None
    conversation = unique_name("persist")
    out = run_python(
        CHILD_PRELUDE
        + """
alias, created = store.get_or_create(
    make_alias(slot=slot, conversation=conversation), now=T0,
    entries=[make_entry(conversation, "alias-created", data={"ref": "x"})],
)
print(json.dumps([alias.key, alias.address, created]))
""",
        child_args(target, slot, conversation),
    )
    key, address, created = json.loads(out)
    assert created
    with target.open() as store:
        stored = store.get(key)
        assert isinstance(stored, Alias)
        assert (stored.address, stored.slot, stored.conversation) == (address, slot, conversation)
        (entry,) = store.entries(conversation, store="shop")
        assert entry.data == {"ref": "x"}


def test_processes_and_threads_racing_for_one_slot_make_one_alias(target: Target) -> None:
    processes, threads = 4, 8
    slot = make_alias().slot
    assert slot is not None
    conversation = unique_name("race")
    code = (
        CHILD_PRELUDE
        + f"""
import threading
store.get("0" * 32)  # connect before the start signal
barrier = threading.Barrier({threads})
results, errors = [], []
def run():
    barrier.wait()
    try:
        alias, created = store.get_or_create(
            make_alias(slot=slot, conversation=conversation), now=T0,
            entries=[make_entry(conversation, "alias-created")],
        )
        entry, new = store.append(make_entry(conversation, dedup_key="mid:race"))
        results.append([alias.key, created, entry.seq, new])
    except Exception as exc:
        errors.append(repr(exc))
workers = [threading.Thread(target=run) for _ in range({threads})]
print("ready", flush=True)
sys.stdin.readline()
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps({{"results": results, "errors": errors}}))
"""
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, child_args(target, slot, conversation)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    results = []
    for (out, err), child in zip(outputs, children, strict=True):
        assert child.returncode == 0, err
        report = json.loads(out)
        assert report["errors"] == []
        results.extend(report["results"])
    assert len(results) == processes * threads
    assert len({key for key, _, _, _ in results}) == 1
    assert sum(created for _, created, _, _ in results) == 1
    assert len({seq for _, _, seq, _ in results}) == 1
    assert sum(new for _, _, _, new in results) == 1
    with target.open() as store:
        (alias,) = store.aliases(conversation, store="shop")
        assert alias.key == results[0][0]
        assert (
            len(store.entries(conversation, store="shop")) == 2
        )  # one creation event, one message


# -- with the tracker ----------------------------------------------------------------------


def test_tracker_on_sqlite(tmp_path: Path) -> None:
    def make(store: SQLStorage) -> Tracker:
        return Tracker(
            storage=store,
            keys=["FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM"],
            default_policy=Policy(domain="ct.example.com"),
            clock=FrozenClock(T0),
            index_key="9pp41yiD3TsHt3GEP7GWnIdm2dRKv5UYFrCgKJF7BC4",
        )

    url = f"sqlite:///{tmp_path / 'ct.db'}"
    with SQLStorage(url) as store:
        store.upgrade()
        tracker = make(store)
        alias = tracker.mask("maria@example.com", conversation="order-9")
        assert tracker.mask("maria@example.com", conversation="order-9") == alias
    with SQLStorage(url) as store:
        assert make(store).unmask(alias.address).real_address == "maria@example.com"
