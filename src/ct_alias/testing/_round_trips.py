"""Counting the round trips an engine makes to its database server (needs SQLAlchemy).

A round trip is one request the driver sends and waits for: a statement, the
``BEGIN`` psycopg sends before the first statement of a transaction, a
``COMMIT`` or ``ROLLBACK`` the driver actually sends, a pre-ping. Statements
are seen through SQLAlchemy's ``before_cursor_execute`` event; transaction
ends through the ``begin``/``commit``/``rollback`` events and the pool's
``reset`` event, each counted only when the driver really talks to the server
then (psycopg skips ``COMMIT``/``ROLLBACK`` on an idle connection and sends no
``BEGIN`` in autocommit mode; PyMySQL sends no ``BEGIN`` at all). Reads the
SQL store sends straight on a pooled driver connection (PostgreSQL's read by
key, see :mod:`ct_alias.storage.sql.direct`) are counted through
:func:`~ct_alias.storage.sql.direct.observe`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection

from ..storage.sql import direct

__all__ = ["RoundTrips"]


class RoundTrips:
    """Counts an engine's round trips while in use as a context manager.

    ::

        with RoundTrips(store.engine) as trips:
            tracker.mask("maria@example.com", conversation="order-7")
        assert trips.count == 1, trips.sent

    Attributes:
        sent: what was sent, in order: the first word of each statement
            (``SELECT``, ``INSERT``, ``WITH``…), or ``BEGIN``, ``COMMIT``,
            ``ROLLBACK``, ``PING``.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.sent: list[str] = []
        self._ping: Callable[[DBAPIConnection], bool] | None = None

    @property
    def count(self) -> int:
        """How many round trips were made since the start (or the last :meth:`reset`)."""
        return len(self.sent)

    def reset(self) -> None:
        """Start counting again from zero."""
        self.sent.clear()

    def __enter__(self) -> Self:
        engine = self._engine
        for target, name, listener in self._listeners():
            event.listen(target, name, listener)
        direct.observe(engine, self.sent.append)
        dialect: Any = engine.dialect
        self._ping = dialect.do_ping
        ping = self._ping

        def counted_ping(dbapi_connection: DBAPIConnection) -> bool:
            self.sent.append("PING")
            return ping(dbapi_connection)

        dialect.do_ping = counted_ping
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        engine = self._engine
        for target, name, listener in self._listeners():
            event.remove(target, name, listener)
        direct.unobserve(engine, self.sent.append)
        dialect: Any = engine.dialect
        del dialect.do_ping  # the class's method again

    # -- listeners -----------------------------------------------------------

    def _listeners(self) -> list[tuple[Any, str, Callable[..., None]]]:
        """The events counted: (target, event name, listener), added and removed alike."""
        engine = self._engine
        return [
            (engine, "before_cursor_execute", self._statement),
            (engine, "begin", self._begin),
            (engine, "commit", self._commit),
            (engine, "rollback", self._rollback),
            (engine.pool, "reset", self._reset),
        ]

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        del conn, cursor, args
        self.sent.append(statement.lstrip().split(None, 1)[0].upper())

    def _begin(self, conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        if _driver(dbapi) == "psycopg" and not dbapi.autocommit:  # type: ignore[union-attr]
            self.sent.append("BEGIN")  # psycopg sends it before the first statement

    def _commit(self, conn: Connection) -> None:
        if _sends_end(conn.connection.dbapi_connection):
            self.sent.append("COMMIT")

    def _rollback(self, conn: Connection) -> None:
        if self._sends_rollback(conn.connection.dbapi_connection):
            self.sent.append("ROLLBACK")

    def _reset(self, dbapi: DBAPIConnection, record: Any, state: Any) -> None:
        del record
        if not state.transaction_was_reset and self._sends_rollback(dbapi):
            self.sent.append("ROLLBACK")

    def _sends_rollback(self, dbapi: DBAPIConnection | None) -> bool:
        dialect = self._engine.dialect
        if dbapi is None:
            return False
        if dialect.skip_autocommit_rollback and dialect.detect_autocommit_setting(dbapi):
            return False  # SQLAlchemy does not ask the driver
        return _sends_end(dbapi)


def _driver(dbapi: DBAPIConnection | None) -> str:
    return "" if dbapi is None else type(dbapi).__module__.partition(".")[0]


def _sends_end(dbapi: DBAPIConnection | None) -> bool:
    """Whether the driver sends ``COMMIT``/``ROLLBACK`` to the server when asked to now."""
    driver = _driver(dbapi)
    if driver == "psycopg":
        return int(dbapi.info.transaction_status) != 0  # type: ignore[union-attr]  # not IDLE
    if driver == "sqlite3":
        return bool(dbapi.in_transaction)  # type: ignore[union-attr]
    return dbapi is not None  # PyMySQL and others: always
