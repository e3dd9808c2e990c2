"""Storage on SQLAlchemy Core: SQLite, PostgreSQL, MariaDB/MySQL (the ``sql`` extra).

Create the tables once with :func:`upgrade` (or ``ct-alias db upgrade``), then
hand a :class:`SQLStorage` to the tracker::

    from ct_alias.storage.sql import SQLStorage

    store = SQLStorage("postgresql+psycopg://app@db.example/shop")
    store.upgrade()  # idempotent: creates or migrates the tables

The constructor does no I/O; connections are opened on first use, from a
pool that checks them before use (``pool_pre_ping``), so a call after the
server dropped a connection reconnects. Every driver error surfaces as
:class:`~ct_alias.errors.StorageError` with the driver's exception as its
``cause`` (and ``__cause__``); a transaction that fails leaves nothing behind.

How get-or-create stays atomic and race-free on every database: the alias
table's ``key`` and ``slot`` are unique; a new alias is inserted with the
dialect's insert-or-ignore (``ON CONFLICT DO NOTHING`` on PostgreSQL and
SQLite, a no-op ``ON DUPLICATE KEY UPDATE`` on MariaDB/MySQL) and the winner is
read back; an unusable alias leaves its slot by a compare-and-set ``UPDATE``
(on its key *and* slot) in the same transaction. SQLite writers take the
write lock up front (``BEGIN IMMEDIATE``) and wait for it (``busy_timeout``),
file databases use WAL, so many processes can share one file. Deadlocks and
serialisation failures are retried a few times.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self, TypeAlias, TypeVar

from attrs import evolve

from ..errors import (
    AliasCollision,
    ConfigurationError,
    InvalidArgument,
    MissingExtra,
    StorageError,
)

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise MissingExtra("sql", "sqlalchemy", "the SQL store") from _exc

from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ColumnElement, Executable
from sqlalchemy.sql.schema import Table

from .._deprecated import renamed
from ..aliases import Alias, AliasStatus, Role
from ..errors import ExpiryReason
from ..timeline import EntryKind, TimelineEntry
from ..vocabulary import MYSQL_DIALECTS
from ._sql_schema import (
    DEFAULT_PREFIX,
    SCHEMA_VERSION,
    STEPS,
    SQLTables,
    UTCDateTime,
    build_metadata,
    build_tables,
)
from .base import AliasChange, Sealed, Tombstone

__all__ = [
    "SCHEMA_VERSION",
    "SQLStorage",
    "SQLTables",
    "build_metadata",
    "metadata",
    "upgrade",
]

#: ct_alias's tables with the default prefix, for a host's Alembic ``target_metadata``.
metadata = build_metadata()

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Row: TypeAlias = "Row[*tuple[Any, ...]]"

_MYSQL: Final = MYSQL_DIALECTS
#: How long a SQLite writer waits for the write lock held by another connection or process.
_SQLITE_BUSY_SECONDS: Final = 30.0
#: Attempts of one transaction that meets deadlocks or serialisation failures.
_ATTEMPTS: Final = 5
#: Rounds of get-or-create within one transaction before giving up on a contended slot.
_SLOT_ROUNDS: Final = 8
#: Drivers used for URLs that name only the database.
_DEFAULT_DRIVERS: Final = MappingProxyType(
    {
        "postgresql": "postgresql+psycopg",
        "postgres": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mariadb+pymysql",
    }
)
#: Which extra provides which driver module.
_EXTRAS: Final = MappingProxyType(
    {
        "psycopg": ("postgresql", "a PostgreSQL store"),
        "pymysql": ("mysql", "a MariaDB/MySQL store"),
        "sqlalchemy": ("sql", "the SQL store"),
    }
)
# MariaDB/MySQL error numbers.
_MYSQL_RETRY: Final = frozenset({1205, 1213})  # lock wait timeout, deadlock
_MYSQL_TRANSIENT: Final = frozenset(
    {1040, 1053, 1077, 1317, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
)  # too many connections, shutdown, interrupted, killed, cannot connect, gone away, lost


class SQLStorage:
    """An :class:`~ct_alias.storage.Storage` in a SQL database, through SQLAlchemy Core.

    Works with SQLite (``sqlite:///path.db``, or ``sqlite://`` in memory),
    PostgreSQL (``postgresql+psycopg://…``) and MariaDB/MySQL
    (``mysql+pymysql://…``). ``postgresql://`` and ``mysql://`` URLs use
    those drivers. It is thread-safe, and any number of processes may share
    one database.

    Args:
        url_or_engine: a database URL, or an :class:`~sqlalchemy.Engine` the
            host already has (the storage then neither configures nor disposes
            it: set ``pool_pre_ping``, and on SQLite a busy timeout and WAL,
            yourself).
        prefix: prepended to the names of the storage's tables.
        schema: the PostgreSQL schema (or MariaDB/MySQL database) of the tables.
        **engine_options: passed to :func:`sqlalchemy.create_engine`, over the
            store's defaults (``pool_pre_ping=True``; ``READ COMMITTED`` on
            MariaDB/MySQL; a 30 s busy timeout and WAL on SQLite files).

    Raises:
        ConfigurationError: a malformed URL, an unknown database, a bad prefix,
            or engine options given with an engine.
        MissingExtra: the database's driver is not installed.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        **engine_options: Any,
    ) -> None:
        self._tables = build_tables(prefix, schema)
        self._prefix = prefix
        self._schema = schema
        if isinstance(url_or_engine, Engine):
            if engine_options:
                raise ConfigurationError("engine options can only be given with a URL")
            engine = url_or_engine
            self._owns_engine = False
        else:
            engine = _create_engine(url_or_engine, engine_options)
            self._owns_engine = True
        self._engine = engine
        self._dialect = engine.dialect.name
        # Who may use a connection at once: reads and writes on SQLite in memory share
        # one connection (one at a time); SQLite file writers queue here rather than
        # in SQLite's sleeping busy handler (other processes still wait there).
        self._read_guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._write_guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._reader: Engine = engine
        if self._dialect == "sqlite":
            self._write_guard = threading.Lock()
            if _is_memory(engine.url):
                self._read_guard = self._write_guard
        elif self._dialect == "postgresql":
            # Single-statement reads need no transaction: no BEGIN/ROLLBACK round trips.
            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sql = _Statements(self._tables, self._dialect)

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"<SQLStorage {url} prefix={self._prefix!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the storage uses."""
        return self._engine

    @property
    def tables(self) -> SQLTables:
        """The store's tables, as SQLAlchemy Core tables."""
        return self._tables

    def close(self) -> None:
        """Close the pooled connections of the engine the storage created.

        An engine passed in by the host is left alone. The store can still
        be used afterwards: it opens new connections as needed (for SQLite in
        memory, ``sqlite://``, that is a new, empty database).
        """
        if self._owns_engine:
            self._engine.dispose()

    def dispose(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    # -- schema ----------------------------------------------------------------

    def upgrade(self) -> int:
        """Create the tables, or bring them up to date; safe to run again and concurrently.

        Returns:
            The schema version now in place.

        Raises:
            StorageError: the database failed (or refused the DDL).
        """
        return self._run(
            "upgrading the schema", self._upgrade, write=True, retry_lost=True, begin=False
        )

    def schema_version(self) -> int:
        """The schema version in place: 0 before :meth:`upgrade` ever ran.

        Raises:
            StorageError: the database failed.
        """
        return self._run("reading the schema version", self._version, write=False, retry_lost=True)

    def _begin_writing(self, conn: Connection) -> None:
        """Start a write transaction: on SQLite, take the write lock first (waiting for it).

        A deferred ``BEGIN`` would take a read lock and fail, not wait, when
        it needs the write lock another connection holds. The driver sends
        no ``BEGIN`` of its own inside a transaction already begun.
        """
        if self._dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _upgrade(self, conn: Connection) -> int:
        versions = self._tables.versions
        with self._upgrade_lock(conn), conn.begin():
            self._begin_writing(conn)
            if self._dialect == "postgresql":
                key = int.from_bytes(self._lock_digest(), "big", signed=True)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                if self._schema is not None:
                    conn.execute(sa.schema.CreateSchema(self._schema, if_not_exists=True))
            versions.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0
            for step in STEPS:
                if step.version <= current:
                    continue
                step.apply(conn, self._tables)
                conn.execute(
                    versions.insert().values(
                        version=step.version,
                        applied_at=datetime.now(UTC),
                        description=step.description,
                    )
                )
                current = step.version
            return current

    def _lock_digest(self) -> bytes:
        database = self._engine.url.database or ""
        name = f"{database}.{self._schema or ''}.{self._prefix}".encode()
        return hashlib.blake2b(name, digest_size=8, person=b"ct_alias.upgrade").digest()

    @contextlib.contextmanager
    def _upgrade_lock(self, conn: Connection) -> Iterator[None]:
        """Serialise concurrent upgrades of the same tables.

        MariaDB/MySQL commit DDL at once, so a session lock spans the whole
        upgrade there; PostgreSQL takes a transaction lock in the upgrade's
        transaction, and SQLite's ``BEGIN IMMEDIATE`` is a lock already.
        """
        if self._dialect not in _MYSQL:
            yield
            return
        lock = f"ct_alias.upgrade.{self._lock_digest().hex()}"
        taken = conn.execute(sa.text("SELECT GET_LOCK(:lock, 60)"), {"lock": lock}).scalar()
        conn.commit()
        if taken != 1:
            raise StorageError("upgrading the schema: another upgrade holds its lock")
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:lock)"), {"lock": lock})
            conn.commit()

    def _version(self, conn: Connection) -> int:
        versions = self._tables.versions
        if not sa.inspect(conn).has_table(versions.name, schema=self._schema):
            return 0
        return conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0

    # -- aliases ---------------------------------------------------------------

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """See :meth:`Storage.get_or_create`."""
        slot = candidate.slot
        if slot is None:
            raise InvalidArgument("candidate", "a candidate alias needs a slot")
        operation = "creating an alias"
        # Most calls find a usable alias: a plain read, without a write transaction.
        row = self._run(operation, self._sql.read_slot(slot), write=False, retry_lost=True)
        if row is not None:
            current = _alias(row)
            if current.usable_at(now):
                return current, False
        values = _alias_values(candidate)
        look_first = row is not None  # an empty slot is tried with an insert straight away

        def work(conn: Connection) -> tuple[Alias, bool]:
            return self._get_or_create(
                conn, candidate, values, now=now, entries=entries, look_first=look_first
            )

        return self._run(operation, work, write=True, retry_lost=True)

    def _get_or_create(
        self,
        conn: Connection,
        candidate: Alias,
        values: dict[str, Any],
        *,
        now: datetime,
        entries: Sequence[TimelineEntry],
        look_first: bool,
    ) -> tuple[Alias, bool]:
        """Get-or-create inside a write transaction.

        Each round looks at the slot (a locking read on MariaDB/MySQL, which
        sees the latest committed row whatever the isolation level), returns
        a usable alias, retires an unusable one by compare-and-set, then
        inserts the candidate unless a unique key is taken. A taken key with
        a free slot is a collision; a taken slot means a concurrent caller
        won: the next round returns its alias.
        """
        sql = self._sql
        slot = {"slot": candidate.slot}
        conflicted = False
        for _ in range(_SLOT_ROUNDS):
            if look_first or conflicted:
                row = conn.execute(sql.by_slot_for_update, slot).first()
                if row is not None:
                    current = _alias(row)
                    if current.usable_at(now):
                        return current, False
                    retire = {"b_key": current.key, "b_slot": candidate.slot}
                    if conn.execute(sql.retire, retire).rowcount != 1:
                        continue  # someone else changed it first: look again
                elif conflicted and conn.execute(sql.key_taken, {"key": candidate.key}).first():
                    raise AliasCollision()
            if sql.insert_alias(conn, values) is not None:
                for entry in entries:
                    self._append(conn, entry)
                return candidate, True
            conflicted = True
        raise StorageError("creating an alias: the slot stayed contended", transient=True)

    def get(self, key: str) -> Alias | Tombstone | None:
        """See :meth:`Storage.get`."""
        row = self._run("reading an alias", self._sql.read_key(key), write=False, retry_lost=True)
        return None if row is None else _record(row)

    def aliases(self, conversation: str) -> list[Alias]:
        """See :meth:`Storage.aliases`."""
        statement = self._sql.by_conversation
        params = {"conversation": conversation}

        def work(conn: Connection) -> list[Alias]:
            return [_alias(row) for row in conn.execute(statement, params)]

        return self._run("listing aliases", work, write=False, retry_lost=True)

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """See :meth:`Storage.update`."""
        if not changes and not entries:
            return [], []
        sql = self._sql

        def work(conn: Connection) -> tuple[list[Alias], list[TimelineEntry]]:
            keys = []
            for change in changes:
                params = {
                    "b_key": change.key,
                    "status": change.status.value,
                    "ends_at": change.ends_at,
                    "revoked_at": change.revoked_at,
                }
                if conn.execute(sql.change, params).rowcount:
                    keys.append(change.key)
            changed: list[Alias] = []
            if keys:
                found = {row[0]: _alias(row) for row in conn.execute(sql.by_keys, {"keys": keys})}
                changed = [found[key] for key in keys]
            stored = [self._append(conn, entry)[0] for entry in entries]
            return changed, stored

        idempotent = all(entry.dedup_key is not None for entry in entries)
        return self._run("updating aliases", work, write=True, retry_lost=idempotent)

    def purge(self, *, before: datetime, now: datetime) -> int:
        """See :meth:`Storage.purge`."""
        statement = self._sql.purge(before, now)

        def work(conn: Connection) -> int:
            return conn.execute(statement).rowcount

        return self._run("purging aliases", work, write=True, retry_lost=True)

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """See :meth:`Storage.scan`."""
        params: dict[str, Any] = {"limit": limit}
        statement = self._sql.scan_first
        if after is not None:
            statement = self._sql.scan_after
            params["after"] = after

        def work(conn: Connection) -> list[Alias]:
            return [_alias(row) for row in conn.execute(statement, params)]

        return self._run("scanning aliases", work, write=False, retry_lost=True)

    def reseal(self, records: Sequence[Sealed]) -> int:
        """See :meth:`Storage.reseal`."""
        if not records:
            return 0
        statement = self._sql.reseal

        def work(conn: Connection) -> int:
            done = 0
            for sealed in records:
                params = {
                    "b_key": sealed.key,
                    "address": sealed.address,
                    "real_address": sealed.real_address,
                }
                done += conn.execute(statement, params).rowcount
            return done

        return self._run("resealing aliases", work, write=True, retry_lost=True)

    # -- timeline --------------------------------------------------------------

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """See :meth:`Storage.append`."""

        def work(conn: Connection) -> tuple[TimelineEntry, bool]:
            return self._append(conn, entry)

        retry_lost = entry.dedup_key is not None
        return self._run("appending to a timeline", work, write=True, retry_lost=retry_lost)

    def _append(self, conn: Connection, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        sql = self._sql
        values = {
            "conversation": entry.conversation,
            "at": entry.at,
            "kind": entry.kind.value,
            "name": entry.name,
            "data": entry.data,
            "dedup_key": entry.dedup_key,
        }
        if entry.dedup_key is None:
            inserted = conn.execute(sql.insert_entry, values).inserted_primary_key
            return evolve(entry, seq=inserted[0] if inserted else None), True
        seq = sql.insert_entry_once(conn, values)
        if seq is not None:
            return evolve(entry, seq=seq), True
        key = {"conversation": entry.conversation, "dedup_key": entry.dedup_key}
        row = conn.execute(sql.entry_by_dedup, key).first()
        if row is None:  # the conflicting entry is not visible yet: run the transaction again
            raise _Contention()
        return _entry(row), False

    def entries(
        self,
        conversation: str,
        *,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """See :meth:`Storage.entries`."""
        statement, params = self._sql.entries(conversation, after, limit)

        def work(conn: Connection) -> list[TimelineEntry]:
            return [_entry(row) for row in conn.execute(statement, params)]

        return self._run("reading a timeline", work, write=False, retry_lost=True)

    # -- running transactions ----------------------------------------------------

    def _run(
        self,
        operation: str,
        work: Callable[[Connection], T],
        *,
        write: bool,
        retry_lost: bool,
        begin: bool = True,
    ) -> T:
        """Run ``work`` on a pooled connection, in a transaction when it writes.

        Deadlocks and serialisation failures are retried; a connection lost
        mid-way is retried when ``retry_lost`` (the work is idempotent).
        Everything else becomes a :class:`StorageError`. With ``begin=False``
        a writer's work manages its transactions itself.
        """
        engine, guard = (
            (self._engine, self._write_guard) if write else (self._reader, self._read_guard)
        )
        attempt = 1
        while True:
            try:
                with guard, engine.connect() as conn:
                    if not (write and begin):
                        return work(conn)
                    with conn.begin():
                        self._begin_writing(conn)
                        return work(conn)
            except _Contention:
                fate = _Fate.RETRY
                cause: BaseException | None = None
            except sa_exc.DBAPIError as exc:
                fate = _fate(exc, self._dialect)
                cause = exc
            except sa_exc.SQLAlchemyError as exc:
                transient = isinstance(exc, sa_exc.TimeoutError)
                raise StorageError(operation, exc, transient=transient) from exc
            retry = fate is _Fate.RETRY or (fate is _Fate.LOST and retry_lost)
            if not retry or attempt >= _ATTEMPTS:
                transient = fate is not _Fate.PERMANENT
                raise StorageError(operation, cause, transient=transient) from cause
            logger.debug(
                "retrying %s (attempt %d): %s",
                operation,
                attempt + 1,
                type(cause).__name__ if cause is not None else "contention",
            )
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not a secret
            attempt += 1


class _Contention(Exception):
    """A transaction met a row it cannot see yet; it is run again."""


class _Fate(enum.StrEnum):
    """What to do about a failed transaction."""

    RETRY = "retry"
    """Rolled back by a deadlock or a serialisation failure: run it again."""
    LOST = "lost"
    """The connection broke during the work: run it again if the work is idempotent."""
    TRANSIENT = "transient"
    """May work later (cannot connect, the server is shutting down…)."""
    PERMANENT = "permanent"
    """Will fail the same way again."""


def _fate(exc: sa_exc.DBAPIError, dialect: str) -> _Fate:
    """Classify a driver error by its code (SQLSTATE on PostgreSQL, errno on MariaDB/MySQL)."""
    if exc.connection_invalidated:
        return _Fate.LOST
    if dialect == "postgresql":
        return _postgresql_fate(getattr(exc.orig, "sqlstate", None))
    if dialect in _MYSQL:
        args = getattr(exc.orig, "args", ())
        return _mysql_fate(args[0] if args and isinstance(args[0], int) else None)
    if dialect == "sqlite":
        text = str(exc.orig).lower()
        return _Fate.TRANSIENT if "locked" in text or "busy" in text else _Fate.PERMANENT
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return _Fate.TRANSIENT
    return _Fate.PERMANENT


def _postgresql_fate(sqlstate: str | None) -> _Fate:
    if sqlstate in ("40001", "40P01"):  # serialization failure, deadlock
        return _Fate.RETRY
    # No SQLSTATE: the client lost or could not open the connection. 08: connection
    # exception, 53: insufficient resources, 57: operator intervention, 58: system error.
    if sqlstate is None or sqlstate[:2] in ("08", "53", "57", "58") or sqlstate == "55P03":
        return _Fate.TRANSIENT
    return _Fate.PERMANENT


def _mysql_fate(errno: int | None) -> _Fate:
    if errno in _MYSQL_RETRY:
        return _Fate.RETRY
    if errno is None or errno in _MYSQL_TRANSIENT:
        return _Fate.TRANSIENT
    return _Fate.PERMANENT


# -- statements ----------------------------------------------------------------

_ALIAS_COLUMNS: Final = (
    "key",
    "slot",
    "address",
    "real_address",
    "conversation",
    "store",
    "role",
    "strategy",
    "created_at",
    "expires_at",
    "status",
    "ends_at",
    "revoked_at",
    "purged_at",
    "expired_at",
    "expiry_reason",
)
_ENTRY_COLUMNS: Final = ("conversation", "kind", "name", "at", "data", "dedup_key", "seq")


class _Statements:
    """The store's statements, built once per store so SQLAlchemy's compiled cache always hits."""

    def __init__(self, tables: SQLTables, dialect: str) -> None:
        a = tables.aliases
        t = tables.timeline
        self._aliases = a
        self._timeline = t
        self._dialect = dialect
        columns = [a.c[name] for name in _ALIAS_COLUMNS]
        select_alias = sa.select(*columns)
        self.by_key = select_alias.where(a.c.key == sa.bindparam("key"))
        self.by_slot = select_alias.where(a.c.slot == sa.bindparam("slot"))
        # MariaDB/MySQL: a locking read sees the latest committed row whatever the isolation.
        locking = dialect in _MYSQL
        self.by_slot_for_update = self.by_slot.with_for_update() if locking else self.by_slot
        self.key_taken = sa.select(a.c.id).where(a.c.key == sa.bindparam("key"))
        self.retire = (
            sa.update(a)
            .where(a.c.key == sa.bindparam("b_key"), a.c.slot == sa.bindparam("b_slot"))
            .values(slot=None)
        )
        self.by_conversation = (
            select_alias.where(a.c.conversation == sa.bindparam("conversation"))
            .where(a.c.purged_at.is_(None))
            .order_by(a.c.created_at, a.c.id)
        )
        self.change = sa.update(a).where(a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None))
        self.by_keys = select_alias.where(a.c.key.in_(sa.bindparam("keys", expanding=True)))
        live = select_alias.where(a.c.purged_at.is_(None)).order_by(a.c.key)
        self.scan_first = live.limit(sa.bindparam("limit", type_=sa.Integer))
        self.scan_after = live.where(a.c.key > sa.bindparam("after")).limit(
            sa.bindparam("limit", type_=sa.Integer)
        )
        self.reseal = sa.update(a).where(a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None))
        self._insert_alias = _InsertOnce(a, a.c.id, dialect)

        entry_columns = [t.c[name] for name in _ENTRY_COLUMNS]
        select_entry = sa.select(*entry_columns)
        self.insert_entry = sa.insert(t)
        self._insert_entry_once = _InsertOnce(t, t.c.seq, dialect)
        by_dedup = select_entry.where(
            t.c.conversation == sa.bindparam("conversation"),
            t.c.dedup_key == sa.bindparam("dedup_key"),
        )
        self.entry_by_dedup = by_dedup.with_for_update() if locking else by_dedup
        timeline = select_entry.where(t.c.conversation == sa.bindparam("conversation")).order_by(
            t.c.at, t.c.seq
        )
        later = sa.or_(
            t.c.at > sa.bindparam("at", type_=UTCDateTime()),
            sa.and_(
                t.c.at == sa.bindparam("at", type_=UTCDateTime()),
                t.c.seq > sa.bindparam("seq", type_=sa.BigInteger),
            ),
        )
        limit = sa.bindparam("limit", type_=sa.Integer)
        self._entries = {
            (False, False): timeline,
            (False, True): timeline.limit(limit),
            (True, False): timeline.where(later),
            (True, True): timeline.where(later).limit(limit),
        }

    def read_key(self, key: str) -> Callable[[Connection], _Row | None]:
        statement = self.by_key
        params = {"key": key}
        return lambda conn: conn.execute(statement, params).first()

    def read_slot(self, slot: str) -> Callable[[Connection], _Row | None]:
        statement = self.by_slot
        params = {"slot": slot}
        return lambda conn: conn.execute(statement, params).first()

    def insert_alias(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        return self._insert_alias(conn, values)

    def insert_entry_once(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        return self._insert_entry_once(conn, values)

    def entries(
        self, conversation: str, after: tuple[datetime, int] | None, limit: int | None
    ) -> tuple[Executable, dict[str, Any]]:
        params: dict[str, Any] = {"conversation": conversation}
        if after is not None:
            params["at"], params["seq"] = after
        if limit is not None:
            params["limit"] = limit
        return self._entries[after is not None, limit is not None], params

    def purge(self, before: datetime, now: datetime) -> Executable:
        a = self._aliases
        revoked = a.c.status == AliasStatus.REVOKED.value
        ended_first = sa.and_(a.c.ends_at.is_not(None), a.c.ends_at < a.c.expires_at)
        stopped: ColumnElement[datetime] = sa.case(
            (revoked, sa.func.coalesce(a.c.revoked_at, a.c.created_at, type_=UTCDateTime())),
            (ended_first, a.c.ends_at),
            else_=a.c.expires_at,
        )
        reason = sa.case(
            (revoked, ExpiryReason.REVOKED.value),
            (ended_first, ExpiryReason.ENDED.value),
            else_=ExpiryReason.TTL.value,
        )
        cutoff = sa.literal(before, UTCDateTime())
        return (
            sa.update(a)
            .where(
                a.c.purged_at.is_(None),
                sa.or_(a.c.expires_at < cutoff, a.c.ends_at < cutoff, revoked),
                stopped < cutoff,
            )
            .values(
                address=None,
                real_address=None,
                slot=None,
                purged_at=sa.literal(now, UTCDateTime()),
                expired_at=stopped,
                expiry_reason=reason,
            )
        )


class _Upsert(enum.Enum):
    """How a dialect inserts a row unless a unique key is taken."""

    RETURNING = enum.auto()
    """``ON CONFLICT DO NOTHING RETURNING pk``: a row back only when inserted."""
    ROWCOUNT = enum.auto()
    """``ON CONFLICT DO NOTHING``, then the row count and last row id (SQLite before 3.35)."""
    INSERT_ID = enum.auto()
    """A no-op ``ON DUPLICATE KEY UPDATE``: the insert id is 0 when nothing was inserted."""
    SAVEPOINT = enum.auto()
    """A plain ``INSERT`` in a savepoint: an integrity error means "taken"."""


class _InsertOnce:
    """Insert a row unless a unique key is taken; return its new primary key, or ``None``.

    PostgreSQL and SQLite: ``INSERT … ON CONFLICT DO NOTHING RETURNING pk``.
    MariaDB/MySQL: ``INSERT … ON DUPLICATE KEY UPDATE pk = pk``. Other
    databases: a plain ``INSERT`` in a savepoint.
    """

    def __init__(self, table: Table, pk: sa.Column[Any], dialect: str) -> None:
        self._statement: Executable
        self._fallback: Executable | None = None
        if dialect == "postgresql":
            self._how = _Upsert.RETURNING
            self._statement = postgresql.insert(table).on_conflict_do_nothing().returning(pk)
        elif dialect == "sqlite":
            self._how = _Upsert.RETURNING
            ignore = sqlite.insert(table).on_conflict_do_nothing()
            self._statement = ignore.returning(pk)
            self._fallback = ignore
        elif dialect in _MYSQL:
            self._how = _Upsert.INSERT_ID
            self._statement = mysql.insert(table).on_duplicate_key_update({pk.name: pk})
        else:
            self._how = _Upsert.SAVEPOINT
            self._statement = sa.insert(table)

    def __call__(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        how = self._how
        if self._fallback is not None and not conn.dialect.insert_returning:  # old SQLite
            how = _Upsert.ROWCOUNT
        if how is _Upsert.RETURNING:
            found: int | None = conn.execute(self._statement, values).scalar()
            return found
        if how is _Upsert.ROWCOUNT and self._fallback is not None:
            result = conn.execute(self._fallback, values)
            return result.lastrowid if result.rowcount == 1 else None
        if how is _Upsert.INSERT_ID:
            return conn.execute(self._statement, values).lastrowid or None
        try:
            with conn.begin_nested():
                result = conn.execute(self._statement, values)
        except sa_exc.IntegrityError:
            return None
        inserted = result.inserted_primary_key
        return int(inserted[0]) if inserted else None


# -- rows ------------------------------------------------------------------------


def _alias_values(alias: Alias) -> dict[str, Any]:
    return {
        "key": alias.key,
        "slot": alias.slot,
        "address": alias.address,
        "real_address": alias.real_address,
        "conversation": alias.conversation,
        "store": alias.store,
        "role": alias.role.value,
        "strategy": alias.strategy,
        "created_at": alias.created_at,
        "expires_at": alias.expires_at,
        "status": alias.status.value,
        "ends_at": alias.ends_at,
        "revoked_at": alias.revoked_at,
    }


def _alias(row: _Row) -> Alias:
    return Alias(
        address=row[2],
        real_address=row[3],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        strategy=row[7],
        created_at=row[8],
        expires_at=row[9],
        status=AliasStatus(row[10]),
        ends_at=row[11],
        revoked_at=row[12],
        key=row[0],
        slot=row[1],
    )


def _record(row: _Row) -> Alias | Tombstone:
    if row[13] is None:
        return _alias(row)
    return Tombstone(
        key=row[0],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        expired_at=row[14],
        reason=ExpiryReason(row[15]),
        purged_at=row[13],
    )


def _entry(row: _Row) -> TimelineEntry:
    return TimelineEntry(
        conversation=row[0],
        kind=EntryKind(row[1]),
        name=row[2],
        at=row[3],
        data=row[4],
        dedup_key=row[5],
        seq=row[6],
    )


# -- engines -------------------------------------------------------------------------


def _create_engine(url: str | URL, options: Mapping[str, Any]) -> Engine:
    """An engine configured for the storage: lazy (no connection is opened here)."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ConfigurationError("not a database URL (expected dialect+driver://…)") from exc
    parsed = _normalise_url(parsed)
    backend = parsed.get_backend_name()
    # Statement parameters hold (possibly real) addresses: keep them out of
    # error messages and tracebacks.
    defaults: dict[str, Any] = {"hide_parameters": True}
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["check_same_thread"] = False
        if _is_memory(parsed):
            defaults["poolclass"] = StaticPool
        else:
            connect_args["timeout"] = _SQLITE_BUSY_SECONDS
    else:
        defaults["pool_pre_ping"] = True
        if backend in _MYSQL:
            defaults["isolation_level"] = "READ COMMITTED"
    merged = {**defaults, **options}
    merged["connect_args"] = {**connect_args, **options.get("connect_args", {})}
    try:
        engine = sa.create_engine(parsed, **merged)
    except ImportError as exc:
        raise _missing(exc, parsed.drivername) from exc
    except sa_exc.NoSuchModuleError as exc:
        raise ConfigurationError(f"unknown database or driver: {parsed.drivername!r}") from exc
    except (sa_exc.ArgumentError, TypeError) as exc:
        raise ConfigurationError(f"bad engine options for the SQL store: {exc}") from exc
    if backend == "sqlite" and not _is_memory(parsed):
        event.listen(engine, "connect", _sqlite_wal)
    return engine


def _normalise_url(url: URL) -> URL:
    """Choose our drivers for bare database names; ask MariaDB/MySQL for full UTF-8."""
    driver = _DEFAULT_DRIVERS.get(url.drivername)
    if driver is not None:
        url = url.set(drivername=driver)
    if url.get_backend_name() in _MYSQL and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def _is_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _missing(exc: ImportError, driver: str) -> ConfigurationError:
    module = (exc.name or "").partition(".")[0]
    extra = _EXTRAS.get(module)
    if extra is None:
        return ConfigurationError(f"the driver for {driver!r} is not installed ({exc})")
    return MissingExtra(extra[0], module, extra[1])


def _sqlite_wal(dbapi_connection: Any, record: Any) -> None:
    """Put a SQLite file in WAL mode: readers never block the writer, nor it them."""
    del record
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def upgrade(
    target: str | URL | Engine | SQLStorage,
    *,
    prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    **engine_options: Any,
) -> int:
    """Create ct_alias's tables, or migrate them to :data:`SCHEMA_VERSION`.

    Idempotent (running it again does nothing) and safe to run from several
    processes at once. Run it when deploying, never from a constructor.

    Args:
        target: a database URL, an engine, or a :class:`SQLStorage` (whose
            prefix and schema are then used).
        prefix: the table name prefix (ignored for a store).
        schema: the PostgreSQL schema, created if missing, or MariaDB/MySQL
            database (ignored for a store).
        **engine_options: for :func:`sqlalchemy.create_engine`, with a URL.

    Returns:
        The schema version now in place.

    Raises:
        StorageError: the database failed.
        ConfigurationError: a bad URL, prefix or option.
        MissingExtra: the database's driver is not installed.
    """
    if isinstance(target, SQLStorage):
        return target.upgrade()
    with SQLStorage(target, prefix=prefix, schema=schema, **engine_options) as store:
        return store.upgrade()


#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(__name__, {"SQLStore": "SQLStorage"}, globals())
