"""One-row statements sent straight on a pooled psycopg connection (PostgreSQL).

SQLAlchemy's statement execution costs several times the driver's own work
for a one-row statement (compiled-cache lookup, execution context, result
metadata built from ``cursor.description``, a row object). :class:`Direct`
sends the same statement, compiled once (:class:`DirectSQL`: its text and its
columns' parameter conversions), on the driver connection of a pooled
connection checked out from the engine's pool: the pool's checkout events
(the store's "closed by the server" check), ``pool_recycle`` and invalidation
all apply; psycopg prepares it on the server as it prepares any statement run
often (its ``prepare_threshold``: set it to ``None`` behind PgBouncer's
transaction pooling, and nothing is prepared here either).
Each pooled connection keeps one psycopg cursor per statement (in its pool
record's ``info``, which the pool empties whenever it replaces the driver
connection), so psycopg's adaptation of the statement's parameters and row is
set up once per connection, not at every call.
A driver error is wrapped as SQLAlchemy wraps it (:class:`~sqlalchemy.exc.DBAPIError`,
parameters hidden), and a lost connection is invalidated, so the retry rules of
:mod:`.transactions` apply unchanged.

It is used only where it sends exactly what SQLAlchemy would: PostgreSQL
through psycopg on an engine whose connections are in autocommit mode from
connect (a statement that writes then commits by itself, as through
SQLAlchemy). Statement listeners (``before_cursor_execute``,
``after_cursor_execute``) and ``echo`` see only statements SQLAlchemy
executes, so while an engine has any that are not also :func:`observe`-ers,
statements take SQLAlchemy's path and every one stays visible to the host's
instrumentation.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, cast

from attrs import frozen
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Direct", "DirectSQL", "observe", "unobserve"]

#: Callbacks told the first word of each statement sent directly, per engine.
_observers: Final[weakref.WeakKeyDictionary[Engine, list[Callable[[str], None]]]] = (
    weakref.WeakKeyDictionary()
)
_observers_lock: Final = threading.Lock()
#: The key, in a pooled connection's ``info``, of its cursors for the direct path.
_CURSORS: Final = "ct_alias.direct.cursors"


def observe(engine: Engine, callback: Callable[[str], None]) -> None:
    """Call ``callback`` with the first word (``SELECT``, ``WITH``) of each statement sent directly.

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


@frozen
class DirectSQL:
    """A statement compiled once for :class:`Direct`: what SQLAlchemy would send.

    Attributes:
        text: its SQL text, with named (``%(name)s``) parameters.
        verb: its first word (``SELECT``, ``WITH``), told to observers.
        conversions: ``(name, convert)`` for each parameter whose column type
            converts values on the way in (:class:`~.schema.UTCDateTime`,
            JSON text), as SQLAlchemy would convert them.
    """

    text: str
    verb: str
    conversions: tuple[tuple[str, Callable[[Any], Any]], ...]

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The driver's parameters for ``values`` (converted where the column type says).

        Raises:
            sqlalchemy.exc.StatementError: a value the column type refuses (a
                naive datetime, data that is not JSON), as SQLAlchemy raises it.
        """
        params = dict(values)
        try:
            for name, convert in self.conversions:
                params[name] = convert(params[name])
        except (ValueError, TypeError) as exc:
            raise sa_exc.StatementError(
                str(exc), self.text, params, exc, hide_parameters=True
            ) from exc
        return params


class Direct:
    """One-row statements on pooled psycopg connections, bypassing SQLAlchemy's execution.

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

    def compile(self, statement: ClauseElement) -> DirectSQL:
        """``statement`` for this engine, compiled once by SQLAlchemy.

        Raises:
            ValueError: a parameter of ``statement`` has a value of its own
                (only parameters given at each run are sent).
        """
        dialect = self._dialect
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        conversions = []
        for name, bind in compiled.binds.items():
            if not bind.required:
                raise ValueError(f"the direct path sends no built-in value ({name!r})")
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                conversions.append((compiled.escaped_bind_names.get(name, name), convert))
        text = compiled.string
        return DirectSQL(text, text.lstrip().split(None, 1)[0].upper(), tuple(conversions))

    def usable(self) -> bool:
        """Whether a statement may go direct now: possible, and no one else watches statements."""
        if not self.possible:
            return False
        engine = self._engine
        if engine.echo:
            return False
        dispatch = engine.dispatch
        watchers = len(dispatch.before_cursor_execute) + len(dispatch.after_cursor_execute)
        return not watchers or watchers <= len(_observers.get(engine, ()))

    def fetch_one(self, sql: DirectSQL, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run ``sql`` once and return its first row (datetimes in UTC), or ``None``.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver failed (``connection_invalidated``
                when the connection was lost: it is then discarded, not pooled).
            sqlalchemy.exc.StatementError: a value its column type refuses.
        """
        params = sql.bind(values)
        try:
            fairy = self._engine.raw_connection()
        except self._dbapi_error as exc:  # could not connect (as SQLAlchemy wraps it)
            lost = bool(self._dialect.is_disconnect(exc, None, None))
            raise self._wrap(sql, params, exc, lost=lost) from exc
        try:
            connection: Any = fairy.dbapi_connection
            cursors: dict[str, Any] = fairy.info.setdefault(_CURSORS, {})
            cursor: Any = cursors.get(sql.text)
            try:
                if cursor is None or cursor.closed or cursor.connection is not connection:
                    cursor = cursors[sql.text] = connection.cursor()
                for callback in _observers.get(self._engine, ()):
                    callback(sql.verb)
                cursor.execute(sql.text, params)
                row: tuple[Any, ...] | None = cursor.fetchone()
            except self._dbapi_error as exc:
                cursors.pop(sql.text, None)
                lost = bool(self._dialect.is_disconnect(exc, connection, cursor))
                if lost:
                    fairy.invalidate(exc)
                raise self._wrap(sql, params, exc, lost=lost) from exc
        finally:
            fairy.close()
        if row is None:
            return None
        return tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)

    def _wrap(
        self, sql: DirectSQL, params: Mapping[str, Any], exc: Any, *, lost: bool
    ) -> BaseException:
        """``exc`` as SQLAlchemy would raise it: a :class:`DBAPIError`, parameters hidden."""
        wrapped: BaseException = sa_exc.DBAPIError.instance(
            sql.text,
            params,
            exc,
            self._dbapi_error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self._dialect,
        )
        return wrapped
