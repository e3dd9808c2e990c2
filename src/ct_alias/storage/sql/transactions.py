"""Running a unit of work in a transaction: retries, and what a driver error means.

:class:`Transactions` runs a function on a pooled connection, in a
transaction when it writes; deadlocks and serialisation failures are run
again, a connection lost mid-way too when the work is idempotent, and every
other failure becomes a :class:`~ct_alias.errors.StorageError`. :func:`fate`
classifies a driver error by its SQLSTATE (PostgreSQL), errno
(MariaDB/MySQL) or message (SQLite).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from ...errors import StorageError, driver_message
from ...vocabulary import MYSQL_DIALECTS
from .direct import Direct, DirectSQL, DirectWork
from .engine import is_memory

__all__ = [
    "ATTEMPTS",
    "Contention",
    "Fate",
    "Transactions",
    "fate",
    "mysql_fate",
    "postgresql_fate",
    "schema_missing",
]

logger = logging.getLogger("ct_alias.storage.sql")

T = TypeVar("T")

#: Attempts of one transaction that meets deadlocks or serialisation failures.
ATTEMPTS: Final = 5
# MariaDB/MySQL error numbers.
MYSQL_RETRY: Final = frozenset({1205, 1213})  # lock wait timeout, deadlock
MYSQL_TRANSIENT: Final = frozenset(
    {1040, 1053, 1077, 1317, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
)  # too many connections, shutdown, interrupted, killed, cannot connect, gone away, lost


class Transactions:
    """Runs units of work on an engine's connections, retrying what may succeed again.

    Args:
        engine: the storage's engine.
        isolation: the isolation level of its transactions (``None``: the
            server's default).
    """

    def __init__(self, engine: Engine, *, isolation: str | None = None) -> None:
        self._engine = engine
        self.dialect = engine.dialect.name
        # Who may use a connection at once: reads and writes on SQLite in memory share
        # one connection (one at a time); SQLite file writers queue here rather than
        # in SQLite's sleeping busy handler (other processes still wait there).
        self._read_guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._write_guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._reader: Engine = engine  # reads; on server databases, autocommit
        self._writer: Engine = engine
        self._server = _server(engine)
        self.direct = Direct(engine)
        # Server databases: autocommit connections (the engine's own mode if it has it,
        # else a view switching at checkout), transactions begun by an explicit BEGIN.
        self._manual = self.dialect == "postgresql" or self.dialect in MYSQL_DIALECTS
        self._begin = "BEGIN"
        # Work that manages its own transactions (schema upgrades) gets ordinary ones.
        self._owner: Engine = engine
        # Group commit (SQLite): units of work waiting for the write lock together are
        # committed together, those sent directly and those through SQLAlchemy apart.
        self._direct_group: _Group[DirectWork] = _Group(self._commit_direct)
        self._connection_group: _Group[Connection] = _Group(self._commit_connection)
        if self.dialect == "sqlite":
            self._write_guard = threading.Lock()
            if is_memory(engine.url):
                self._read_guard = self._write_guard
        elif self._manual:
            if getattr(engine.dialect, "_on_connect_isolation_level", None) != "AUTOCOMMIT":
                self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._writer = self._reader
            self._owner = engine.execution_options(isolation_level=isolation or "READ COMMITTED")
            if isolation is not None and self.dialect == "postgresql":
                self._begin = f"BEGIN ISOLATION LEVEL {isolation}"

    def begin_writing(self, conn: Connection) -> None:
        """Start a write transaction: on SQLite, take the write lock first (waiting for it).

        A deferred ``BEGIN`` would take a read lock and fail, not wait, when
        it needs the write lock another connection holds. The driver sends
        no ``BEGIN`` of its own inside a transaction already begun.
        """
        if self.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def run(
        self,
        operation: str,
        work: Callable[[Connection], T],
        *,
        write: bool,
        retry_lost: bool,
        begin: bool = True,
        single: bool = False,
        group: bool = False,
    ) -> T:
        """Run ``work`` on a pooled connection, in a transaction when it writes.

        Deadlocks and serialisation failures are retried. A connection lost
        before the transaction's ``COMMIT`` was sent is retried (the server
        rolls back a transaction whose session ends); one lost later, or
        during a statement that commits by itself, only when ``retry_lost``
        (the work is idempotent). Everything else becomes a
        :class:`StorageError`.

        Args:
            operation: what is being done, for errors.
            work: the unit of work.
            write: whether it writes.
            retry_lost: whether it may run again after a connection was lost
                with its outcome unknown.
            begin: ``False`` when the work manages its transactions itself.
            single: the work is one statement that needs no transaction around
                it: on PostgreSQL and MariaDB/MySQL it then commits by itself
                (one round trip); elsewhere it runs in a transaction as usual.
            group: on SQLite, a write that may join a group commit (see
                :meth:`write_direct`); it must be work that may run again
                (``retry_lost``).
        """
        transaction = write and begin
        if not write:
            engine, guard = self._reader, self._read_guard
        elif not begin:
            engine, guard = self._owner, self._write_guard
        else:
            engine, guard = self._writer, self._write_guard
            transaction = not (single and self._manual)

        def once(progress: _Progress) -> T:
            return self._once(engine, guard, work, transaction=transaction, progress=progress)

        def alone() -> T:
            return self._retrying(operation, once, retry_lost=retry_lost, transaction=transaction)

        if group and write and begin and self.dialect == "sqlite":
            if not retry_lost:
                raise ValueError("only work that may run again is committed in a group")
            return self._connection_group.run(work, alone)
        return alone()

    def fetch_one(
        self,
        operation: str,
        sql: DirectSQL | None,
        params: Mapping[str, Any],
        work: Callable[[Connection], Sequence[Any] | None],
        *,
        write: bool = False,
    ) -> Sequence[Any] | None:
        """One statement's first row, or ``None``; run again whenever a connection is lost.

        For reads, and for single statements that may run again (idempotent,
        or doing nothing the second time): with ``write`` the statement
        commits by itself, as :meth:`run` with ``single`` does. Sent directly
        on a pooled driver connection where :class:`~.direct.Direct` is usable
        (PostgreSQL; SQLite for reads); elsewhere ``work`` (the same statement through
        SQLAlchemy, returning its first row) runs as :meth:`run` would.
        """
        direct = self.direct
        if sql is None or not direct.usable() or (write and not direct.writes):
            return self.run(operation, work, write=write, retry_lost=True, single=write)
        guard = self._write_guard if write else self._read_guard

        def once(progress: _Progress) -> Sequence[Any] | None:
            with guard:  # run again on a lost connection: the first attempt is not checked
                return direct.fetch_one(sql, params, checked=progress.attempt > 1)

        return self._retrying(operation, once, retry_lost=True, transaction=False)

    def write_direct(
        self,
        operation: str,
        work: Callable[[DirectWork], T],
        fallback: Callable[[Connection], T],
        *,
        retry_lost: bool,
        group: bool = False,
    ) -> T:
        """A write transaction: ``work`` straight on a pooled ``sqlite3`` connection, if usable.

        On SQLite, while :class:`~.direct.Direct` is usable, ``work`` runs in
        ``BEGIN IMMEDIATE`` … ``COMMIT`` sent on the driver connection (under
        the same write guard, retried under the same rules as :meth:`run`);
        elsewhere ``fallback`` (the same work through SQLAlchemy) runs as
        :meth:`run` runs a write.

        With ``group`` (work that may run again, ``retry_lost``), units of
        work that wait for the write lock together are committed together
        (group commit): the thread that writes runs each of them in a
        savepoint of one transaction, so one commit (one ``fsync``) serves
        them all, and each caller returns only once the commit that holds its
        write is done. A unit that fails in the group is rolled back to its
        savepoint, leaving the others' writes, and then run again by itself,
        in its own thread, as without ``group``; when the group's
        transaction itself fails (nothing of it is written), every unit is
        run again by itself. A unit may thus run in another caller's thread.
        SQLite's ``fallback`` (while someone watches statements) is grouped
        the same way, through SQLAlchemy.
        """
        direct = self.direct
        if self.dialect != "sqlite" or not direct.usable():
            return self.run(operation, fallback, write=True, retry_lost=retry_lost, group=group)
        guard = self._write_guard

        def once(progress: _Progress) -> T:
            def committing() -> None:
                progress.committing = True

            with guard, direct.transaction("BEGIN IMMEDIATE", committing) as conn:
                return work(conn)

        def alone() -> T:
            return self._retrying(operation, once, retry_lost=retry_lost, transaction=True)

        if group:
            if not retry_lost:
                raise ValueError("only work that may run again is committed in a group")
            return self._direct_group.run(work, alone)
        return alone()

    def _commit_direct(self, batch: Sequence[_Grouped[DirectWork, Any]]) -> None:
        """Commit a group of units sent directly (see :meth:`_Group.run`)."""
        try:
            with self._write_guard, self.direct.transaction("BEGIN IMMEDIATE", _no_op) as conn:
                done = _in_savepoints(batch, conn, conn.send_text, conn.in_transaction)
        except (sa_exc.SQLAlchemyError, _GroupLost):
            _alone(batch)  # nothing of the transaction was written
            return
        _committed(done)

    def _commit_connection(self, batch: Sequence[_Grouped[Connection, Any]]) -> None:
        """Commit a group of units run through SQLAlchemy (see :meth:`_Group.run`)."""

        def send(text: str) -> None:
            connection.exec_driver_sql(text)

        def in_transaction() -> bool:
            return bool(getattr(connection.connection.dbapi_connection, "in_transaction", False))

        try:
            with self._write_guard, self._writer.connect() as connection, connection.begin():
                self.begin_writing(connection)
                done = _in_savepoints(batch, connection, send, in_transaction)
        except (sa_exc.SQLAlchemyError, _GroupLost):
            _alone(batch)  # nothing of the transaction was written
            return
        _committed(done)

    def fetch_all(
        self,
        operation: str,
        sql: DirectSQL | None,
        params: Mapping[str, Any],
        work: Callable[[Connection], list[T]],
        make: Callable[[Sequence[Any]], T],
    ) -> list[T]:
        """A read's rows, each made into a record by ``make``; retried like any read.

        Sent directly where :class:`~.direct.Direct` is usable (PostgreSQL,
        SQLite); elsewhere ``work`` (the same read through SQLAlchemy, making
        its records) runs as :meth:`run` would.
        """
        direct = self.direct
        if sql is None or not direct.usable():
            return self.run(operation, work, write=False, retry_lost=True)
        guard = self._read_guard

        def once(progress: _Progress) -> list[T]:
            with guard:  # as fetch_one: the first attempt is not checked
                rows = direct.fetch_all(sql, params, checked=progress.attempt > 1)
            return [make(row) for row in rows]

        return self._retrying(operation, once, retry_lost=True, transaction=False)

    def _retrying(
        self,
        operation: str,
        once: Callable[[_Progress], T],
        *,
        retry_lost: bool,
        transaction: bool,
    ) -> T:
        """Run attempts of ``once`` under the retry rules of :meth:`run`."""
        attempt = 1
        while True:
            progress = _Progress(attempt)
            try:
                return once(progress)
            except Contention:
                outcome = Fate.RETRY
                cause: BaseException | None = None
            except sa_exc.DBAPIError as exc:
                outcome = fate(exc, self.dialect)
                cause = exc
            except sa_exc.SQLAlchemyError as exc:
                transient = isinstance(exc, sa_exc.TimeoutError)
                raise StorageError(operation, exc, transient=transient) from exc
            # Lost before COMMIT was sent: the server rolled it all back, run it again.
            unsent = transaction and not progress.committing
            retry = outcome is Fate.RETRY or (outcome is Fate.LOST and (retry_lost or unsent))
            if not retry or attempt >= ATTEMPTS:
                transient = outcome is not Fate.PERMANENT
                missing = isinstance(cause, sa_exc.DBAPIError) and schema_missing(
                    cause, self.dialect
                )
                detail = None
                if cause is not None and transient and self._server:
                    detail = f"{driver_message(cause)} (server {self._server})"
                raise StorageError(
                    operation, cause, transient=transient, schema_missing=missing, detail=detail
                ) from cause
            logger.debug(
                "retrying %s (attempt %d): %s",
                operation,
                attempt + 1,
                type(cause).__name__ if cause is not None else "contention",
            )
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not a secret
            attempt += 1

    def _once(
        self,
        engine: Engine,
        guard: contextlib.AbstractContextManager[object],
        work: Callable[[Connection], T],
        *,
        transaction: bool,
        progress: _Progress,
    ) -> T:
        """One attempt of :meth:`run`; ``progress`` tells whether ``COMMIT`` was reached."""
        with guard, engine.connect() as connection:
            if not transaction:
                return work(connection)
            if self._manual:
                connection.exec_driver_sql(self._begin)
                try:
                    result = work(connection)
                except BaseException:
                    _roll_back(connection)
                    raise
                progress.committing = True
                connection.exec_driver_sql("COMMIT")
                return result
            with connection.begin():
                self.begin_writing(connection)
                result = work(connection)
                progress.committing = True
            return result


def _roll_back(conn: Connection) -> None:
    """End a transaction begun by ``BEGIN`` on an autocommit connection that failed.

    If the ``ROLLBACK`` cannot be sent, the connection is discarded rather
    than returned to the pool with a transaction open.
    """
    if conn.invalidated:
        return
    try:
        conn.exec_driver_sql("ROLLBACK")
    except sa_exc.DBAPIError:
        if not conn.invalidated:
            conn.invalidate()


class _Progress:
    """How far an attempt got: whether its ``COMMIT`` may have reached the server.

    Also which attempt it is (``attempt``, from 1).
    """

    committing = False

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt


class _State(enum.Enum):
    """What became of a unit of work queued for a group commit."""

    WAITING = enum.auto()
    COMMITTED = enum.auto()  # written, the commit done: its result is there
    ALONE = enum.auto()  # not written: its caller runs it by itself


C = TypeVar("C")


class _Grouped(Generic[C, T]):
    """One caller's unit of work in a group commit, and what became of it."""

    __slots__ = ("result", "state", "work")

    def __init__(self, work: Callable[[C], T]) -> None:
        self.work = work
        self.state = _State.WAITING
        self.result: T | None = None


class _Group(Generic[C]):
    """Units of work on connections of type ``C`` committed together (SQLite group commit).

    Args:
        commit: writes a group of units in one transaction, each in a
            savepoint, and marks what became of each.
    """

    def __init__(self, commit: Callable[[Sequence[_Grouped[C, Any]]], None]) -> None:
        self._commit = commit
        self.condition = threading.Condition()
        self._waiting: list[_Grouped[C, Any]] = []
        self._leading = False

    def run(self, work: Callable[[C], T], alone: Callable[[], T]) -> T:
        """Run ``work`` in a group commit, or ``alone()`` (its own transaction, retried).

        The caller that finds no thread writing a group leads: it takes every
        unit waiting (its own among them) and commits them; the others wait
        until their unit is committed or given back, or until they may lead.
        A leader alone runs ``alone()``; a unit that failed in a group, or
        whose group's transaction failed, is run by ``alone()`` in its own
        caller's thread.
        """
        item: _Grouped[C, T] = _Grouped(work)
        condition = self.condition
        with condition:
            self._waiting.append(item)
            while item.state is _State.WAITING and self._leading:
                condition.wait()
            if item.state is _State.WAITING:
                self._leading = True
                batch, self._waiting = self._waiting, []
            else:
                batch = []
        if batch:
            try:
                if len(batch) == 1:  # nobody to share the commit with: the ordinary transaction
                    item.result = alone()
                    item.state = _State.COMMITTED
                else:
                    self._commit(batch)
            finally:
                with condition:
                    for waiting in batch:
                        if waiting.state is _State.WAITING:  # the leader was interrupted
                            waiting.state = _State.ALONE
                    self._leading = False
                    condition.notify_all()
        if item.state is _State.COMMITTED:
            return cast(T, item.result)
        return alone()


def _in_savepoints(
    batch: Sequence[_Grouped[C, Any]],
    conn: C,
    send: Callable[[str], None],
    in_transaction: Callable[[], bool],
) -> list[tuple[_Grouped[C, Any], Any]]:
    """Run each unit of ``batch`` on ``conn`` in a savepoint; the units done, with their results.

    A unit that raises is rolled back to its savepoint and marked
    :attr:`_State.ALONE` (its caller runs it again by itself, and sees why it
    fails). When SQLite ended the whole transaction on that failure,
    :class:`_GroupLost` is raised: nothing of it is written.
    """
    done: list[tuple[_Grouped[C, Any], Any]] = []
    for item in batch:
        send(_SAVEPOINT)
        try:
            result = item.work(conn)
        except Exception:  # noqa: BLE001 - its caller runs it again, and sees why
            send(_ROLL_BACK_TO)
            send(_RELEASE)
            if not in_transaction():
                raise _GroupLost from None
            item.state = _State.ALONE
        else:
            send(_RELEASE)
            done.append((item, result))
    return done


def _alone(batch: Sequence[_Grouped[Any, Any]]) -> None:
    """Give every unit of a group whose transaction failed back to its caller."""
    for item in batch:
        item.state = _State.ALONE


def _committed(done: list[tuple[_Grouped[Any, Any], Any]]) -> None:
    """Mark the units of a committed group as committed, with their results."""
    for item, result in done:
        item.result = result
        item.state = _State.COMMITTED


class _GroupLost(Exception):
    """SQLite ended a group's transaction when one unit failed: nothing of it is written."""


def _no_op() -> None:
    """Nothing to note when a group's ``COMMIT`` is sent (a group is not retried as a whole)."""


_SAVEPOINT: Final = "SAVEPOINT ct_alias_unit"
_RELEASE: Final = "RELEASE SAVEPOINT ct_alias_unit"
_ROLL_BACK_TO: Final = "ROLLBACK TO SAVEPOINT ct_alias_unit"


_DEFAULT_PORTS: Final = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def _server(engine: Engine) -> str | None:
    """``host:port`` of a database server, for connection errors (None for SQLite)."""
    url = engine.url
    if engine.dialect.name == "sqlite" or not url.host:
        return None
    port = url.port or _DEFAULT_PORTS.get(engine.dialect.name)
    return f"{url.host}:{port}" if port else url.host


class Contention(Exception):
    """A transaction met a row it cannot see yet; it is run again."""


class Fate(enum.StrEnum):
    """What to do about a failed transaction."""

    RETRY = "retry"
    """Rolled back by a deadlock or a serialisation failure: run it again."""
    LOST = "lost"
    """The connection broke during the work: run it again if the work is idempotent."""
    TRANSIENT = "transient"
    """May work later (cannot connect, the server is shutting down…)."""
    PERMANENT = "permanent"
    """Will fail the same way again."""


def fate(exc: sa_exc.DBAPIError, dialect: str) -> Fate:
    """Classify a driver error by its code (SQLSTATE on PostgreSQL, errno on MariaDB/MySQL)."""
    if exc.connection_invalidated:
        return Fate.LOST
    if dialect == "postgresql":
        return postgresql_fate(getattr(exc.orig, "sqlstate", None))
    if dialect in MYSQL_DIALECTS:
        args = getattr(exc.orig, "args", ())
        return mysql_fate(args[0] if args and isinstance(args[0], int) else None)
    if dialect == "sqlite":
        text = str(exc.orig).lower()
        return Fate.TRANSIENT if "locked" in text or "busy" in text else Fate.PERMANENT
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return Fate.TRANSIENT
    return Fate.PERMANENT


def schema_missing(exc: sa_exc.DBAPIError, dialect: str) -> bool:
    """Whether a driver error says a table does not exist (``upgrade()`` was never run)."""
    if dialect == "postgresql":
        return getattr(exc.orig, "sqlstate", None) == "42P01"  # undefined table
    if dialect in MYSQL_DIALECTS:
        args: tuple[object, ...] = getattr(exc.orig, "args", ())
        return bool(args) and args[0] == 1146  # table doesn't exist
    return "no such table" in str(exc.orig).lower()


def postgresql_fate(sqlstate: str | None) -> Fate:
    """Classify a PostgreSQL error by its SQLSTATE."""
    if sqlstate in ("40001", "40P01"):  # serialization failure, deadlock
        return Fate.RETRY
    # No SQLSTATE: the client lost or could not open the connection. 08: connection
    # exception, 53: insufficient resources, 57: operator intervention, 58: system error.
    if sqlstate is None or sqlstate[:2] in ("08", "53", "57", "58") or sqlstate == "55P03":
        return Fate.TRANSIENT
    return Fate.PERMANENT


def mysql_fate(errno: int | None) -> Fate:
    """Classify a MariaDB/MySQL error by its errno."""
    if errno in MYSQL_RETRY:
        return Fate.RETRY
    if errno is None or errno in MYSQL_TRANSIENT:
        return Fate.TRANSIENT
    return Fate.PERMANENT
