"""Single-row reads sent straight on a pooled psycopg connection (PostgreSQL).

SQLAlchemy's statement execution costs several times the driver's own work
for a one-row select by key (compiled-cache lookup, execution context, result
metadata built from ``cursor.description``, a row object). :class:`DirectReads`
sends the same statement, compiled once, on the driver connection of a pooled
connection checked out from the engine's pool: the pool's checkout events
(the store's "closed by the server" check), ``pool_recycle`` and invalidation
all apply; psycopg prepares it on the server as it prepares any statement run
often (its ``prepare_threshold``: set it to ``None`` behind PgBouncer's
transaction pooling, and nothing is prepared here either).
A driver error is wrapped as SQLAlchemy wraps it (:class:`~sqlalchemy.exc.DBAPIError`,
parameters hidden), and a lost connection is invalidated, so the retry rules of
:mod:`.transactions` apply unchanged.

It is used only where it sends exactly what SQLAlchemy would: PostgreSQL
through psycopg on an engine whose connections are in autocommit mode from
connect. Statement listeners (``before_cursor_execute``, ``after_cursor_execute``)
and ``echo`` see only statements SQLAlchemy executes, so while an engine has
any that are not also :func:`observe`-ers, reads take SQLAlchemy's path and
every statement stays visible to the host's instrumentation.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import Executable

__all__ = ["DirectReads", "observe", "unobserve"]

#: Callbacks told the first word of each statement sent directly, per engine.
_observers: Final[weakref.WeakKeyDictionary[Engine, list[Callable[[str], None]]]] = (
    weakref.WeakKeyDictionary()
)
_observers_lock: Final = threading.Lock()


def observe(engine: Engine, callback: Callable[[str], None]) -> None:
    """Call ``callback`` with the first word (``SELECT``) of each statement sent directly.

    An observer also counts as the one statement listener it stands for: an
    engine whose ``before_cursor_execute``/``after_cursor_execute`` listeners
    are no more than its observers keeps the direct path (this is how
    :class:`ct_alias.testing.RoundTrips` counts every round trip).
    """
    with _observers_lock:
        _observers.setdefault(engine, []).append(callback)


def unobserve(engine: Engine, callback: Callable[[str], None]) -> None:
    """Stop calling ``callback`` (see :func:`observe`)."""
    with _observers_lock:
        callbacks = _observers.get(engine, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _observers.pop(engine, None)


class DirectReads:
    """One-row reads on pooled psycopg connections, bypassing SQLAlchemy's execution.

    Args:
        engine: the engine whose pool lends the connections.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._dialect = dialect
        self._dbapi_error: type[Any] = Exception  # the driver's Error class
        autocommit = getattr(dialect, "_on_connect_isolation_level", None) == "AUTOCOMMIT"
        self.possible = dialect.name == "postgresql" and dialect.driver == "psycopg" and autocommit
        if self.possible:
            self._dbapi_error = dialect.loaded_dbapi.Error

    def compile(self, statement: Executable) -> str:
        """The SQL text of ``statement`` for this engine (compiled once, by SQLAlchemy)."""
        return str(statement.compile(dialect=self._dialect))  # type: ignore[attr-defined]

    def usable(self) -> bool:
        """Whether a read may go direct now: possible, and no one else watches statements."""
        if not self.possible:
            return False
        engine = self._engine
        if engine.echo:
            return False
        dispatch = engine.dispatch
        watchers = len(dispatch.before_cursor_execute) + len(dispatch.after_cursor_execute)
        return not watchers or watchers <= len(_observers.get(engine, ()))

    def fetch_one(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run ``sql`` once and return its first row (datetimes in UTC), or ``None``.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver failed (``connection_invalidated``
                when the connection was lost: it is then discarded, not pooled).
        """
        try:
            fairy = self._engine.raw_connection()
        except self._dbapi_error as exc:  # could not connect (as SQLAlchemy wraps it)
            lost = bool(self._dialect.is_disconnect(exc, None, None))
            raise self._wrap(sql, params, exc, lost=lost) from exc
        try:
            connection: Any = fairy.dbapi_connection
            cursor: Any = None
            try:
                cursor = connection.cursor()
                for callback in _observers.get(self._engine, ()):
                    callback("SELECT")
                cursor.execute(sql, params)
                row: tuple[Any, ...] | None = cursor.fetchone()
            except self._dbapi_error as exc:
                lost = bool(self._dialect.is_disconnect(exc, connection, cursor))
                if lost:
                    fairy.invalidate(exc)
                raise self._wrap(sql, params, exc, lost=lost) from exc
            finally:
                if cursor is not None:
                    cursor.close()
        finally:
            fairy.close()
        if row is None:
            return None
        return tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)

    def _wrap(self, sql: str, params: Mapping[str, Any], exc: Any, *, lost: bool) -> BaseException:
        """``exc`` as SQLAlchemy would raise it: a :class:`DBAPIError`, parameters hidden."""
        wrapped: BaseException = sa_exc.DBAPIError.instance(
            sql,
            params,
            exc,
            self._dbapi_error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self._dialect,
        )
        return wrapped
