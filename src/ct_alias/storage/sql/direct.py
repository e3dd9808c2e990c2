"""Hot statements sent straight on a pooled driver connection (PostgreSQL, and SQLite reads).

SQLAlchemy's statement execution costs several times the driver's own work
for a one-row statement (compiled-cache lookup, execution context, result
metadata built from ``cursor.description``, a row object). :class:`Direct`
sends the same statement, compiled once (:class:`DirectSQL`: its text and its
columns' parameter conversions), on the driver connection of a pooled
connection checked out from the engine's pool: the pool's checkout events,
``pool_recycle`` and invalidation all apply (the store's own "closed by the
server" check only from a second attempt: every statement sent here runs again
after a lost connection, so a connection the server closed costs the first
attempt, which fails before anything ran, instead of a ``poll()`` at every
checkout, which lets other threads in); psycopg prepares it on the server as
it prepares any statement run often (its ``prepare_threshold``: set it to
``None`` behind PgBouncer's transaction pooling, and nothing is prepared here
either).
Each pooled connection keeps one psycopg cursor per statement (in its pool
record's ``info``, which the pool empties whenever it replaces the driver
connection), so psycopg's adaptation of the statement's parameters and row is
set up once per connection, not at every call. Parameters are sent positionally
(``%s``, the statement's text as bytes), as psycopg turns SQLAlchemy's named
ones into anyway. A connection left with no transaction open (the driver says
so) goes back to the pool without the pool's reset-on-return ``rollback()``
call, which would have nothing to roll back; the pool's ``reset`` event still
runs, told the transaction was reset. One left in a transaction is rolled back
on return as before.
A driver error is wrapped as SQLAlchemy wraps it (:class:`~sqlalchemy.exc.DBAPIError`,
parameters hidden), and a lost connection is invalidated, so the retry rules of
:mod:`.transactions` apply unchanged.

It is used only where it sends exactly what SQLAlchemy would: PostgreSQL
through psycopg on an engine whose connections are in autocommit mode from
connect (a statement that writes then commits by itself, as through
SQLAlchemy), and reads on SQLite through the standard ``sqlite3`` module
(:attr:`Direct.writes` is false there: a write outside SQLAlchemy would not
commit; values read are converted by their column types' result processors,
as SQLAlchemy converts them, so a datetime stored as text comes back aware UTC).
Statement listeners (``before_cursor_execute``,
``after_cursor_execute``) and ``echo`` see only statements SQLAlchemy
executes, so while an engine has any that are not also :func:`observe`-ers,
statements take SQLAlchemy's path and every one stays visible to the host's
instrumentation.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias, cast

from attrs import Factory, field, frozen
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import base as pool_base
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from .engine import closed_by_server

__all__ = ["Direct", "DirectSQL", "DirectWork", "observe", "unobserve"]

#: What a driver is given as a statement's parameters: named, or in order.
_Params: TypeAlias = "Mapping[str, Any] | Sequence[Any]"

#: Callbacks told the first word of each statement sent directly, per engine.
_observers: Final[weakref.WeakKeyDictionary[Engine, list[Callable[[str], None]]]] = (
    weakref.WeakKeyDictionary()
)
_observers_lock: Final = threading.Lock()
#: The key, in a pooled connection's ``info``, of its cursors for the direct path.
_CURSORS: Final = "ct_alias.direct.cursors"
#: A named parameter of a ``pyformat`` statement, or an escaped ``%`` (kept as it is).
_PYFORMAT: Final = re.compile(r"%%|%\((\w+)\)s")


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
        text: its SQL text, with positional parameters (``%s``, or ``?`` on
            SQLite) in the order of :attr:`positions`, or named ones
            (``%(name)s``) when :attr:`positions` is empty.
        verb: its first word (``SELECT``, ``WITH``), told to observers.
        conversions: ``(name, convert)`` for each parameter whose column type
            converts values on the way in (:class:`~.schema.UTCDateTime`,
            JSON text), as SQLAlchemy would convert them.
    """

    text: str
    verb: str
    conversions: tuple[tuple[str, Callable[[Any], Any]], ...]
    #: The parameters' names in the order of their placeholders; empty: named parameters.
    positions: tuple[str, ...] = ()
    #: Per column of its result, the column type's conversion of a value read (if known).
    results: tuple[Callable[[Any], Any] | None, ...] = ()
    #: What the driver is given as the statement: :attr:`text`, as bytes for psycopg.
    query: str | bytes = field(default=Factory(lambda self: self.text, takes_self=True))
    #: ``(column, conversion)`` of the columns :attr:`results` converts (the rest pass as read).
    converted: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False)
    #: ``(name, conversion or None)`` per placeholder of :attr:`positions`.
    _plan: tuple[tuple[str, Callable[[Any], Any] | None], ...] = field(init=False)

    @converted.default
    def _converted(self) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        return tuple((i, convert) for i, convert in enumerate(self.results) if convert is not None)

    @_plan.default
    def _make_plan(self) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
        converts = dict(self.conversions)
        return tuple((name, converts.get(name)) for name in self.positions)

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
            raise self._refused(exc, params) from exc
        return params

    def parameters(self, values: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
        """What the driver is given for ``values``: :meth:`bind`'s, in order when positional.

        Raises:
            sqlalchemy.exc.StatementError: as :meth:`bind`.
        """
        if not self.positions:
            return self.bind(values)
        try:
            return [
                values[name] if convert is None else convert(values[name])
                for name, convert in self._plan
            ]
        except (ValueError, TypeError) as exc:
            raise self._refused(exc, values) from exc

    def _refused(self, exc: Exception, values: Mapping[str, Any]) -> sa_exc.StatementError:
        """A value its column type refused, as SQLAlchemy raises it (parameters hidden)."""
        return sa_exc.StatementError(str(exc), self.text, dict(values), exc, hide_parameters=True)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A row as SQLAlchemy would return it: converted by column type, datetimes in UTC."""
        if self.results:
            if len(raw) != len(self.results):
                raise ValueError(f"expected {len(self.results)} columns, not {len(raw)}")
            values = list(raw)
            for i, convert in self.converted:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            return tuple(values)
        return tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in raw)


class Direct:
    """Statements on pooled driver connections, bypassing SQLAlchemy's execution.

    Args:
        engine: the engine whose pool lends the connections.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._dialect = dialect
        self._dbapi_error: type[Any] = Exception  # the driver's Error class
        autocommit = getattr(dialect, "_on_connect_isolation_level", None) == "AUTOCOMMIT"
        #: Statements that write may go direct (they commit by themselves): PostgreSQL.
        self.writes = dialect.name == "postgresql" and dialect.driver == "psycopg" and autocommit
        #: Reads may go direct: PostgreSQL as above, and SQLite through ``sqlite3``.
        self.possible = self.writes or (dialect.name == "sqlite" and dialect.driver == "pysqlite")
        if self.possible:
            self._dbapi_error = dialect.loaded_dbapi.Error
        #: Whether a driver connection has no transaction open (then nothing to roll back).
        self._idle: Callable[[Any], bool] = _psycopg_idle if self.writes else _sqlite3_idle
        #: The pool's closed-by-server check (engines made by :func:`.engine.create_engine`).
        self._check = closed_by_server(engine)

    def compile(
        self, statement: ClauseElement, column_keys: Sequence[str] | None = None
    ) -> DirectSQL:
        """``statement`` for this engine, compiled once by SQLAlchemy.

        Raises:
            ValueError: a parameter of ``statement`` has a value of its own
                (only parameters given at each run are sent).
        """
        dialect = self._dialect
        compiled = cast(
            SQLCompiler,
            statement.compile(dialect=dialect, column_keys=column_keys),
        )
        conversions = []
        for name, bind in compiled.binds.items():
            if not bind.required:
                raise ValueError(f"the direct path sends no built-in value ({name!r})")
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                conversions.append((compiled.escaped_bind_names.get(name, name), convert))
        text = compiled.string
        verb = text.lstrip().split(None, 1)[0].upper()
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(statement, "exported_columns", ())
        )
        if compiled.positional:
            positions = tuple(compiled.positiontup or ())
            return DirectSQL(text, verb, tuple(conversions), positions, results)
        # psycopg: the named parameters in order (as psycopg would put them), the text as bytes
        order: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group(0)  # an escaped "%"
            order.append(match.group(1))
            return "%s"

        text = _PYFORMAT.sub(placeholder, text)
        return DirectSQL(
            text, verb, tuple(conversions), tuple(order), results, query=text.encode("utf-8")
        )

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

    def fetch_one(
        self, sql: DirectSQL, values: Mapping[str, Any], *, checked: bool = True
    ) -> tuple[Any, ...] | None:
        """Run ``sql`` once and return its first row (datetimes in UTC), or ``None``.

        With ``checked`` false, the connection is taken from the pool without
        its closed-by-server check (:class:`~.engine.ClosedByServer`): for a
        first attempt that is run again on a lost connection.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver failed (``connection_invalidated``
                when the connection was lost: it is then discarded, not pooled).
            sqlalchemy.exc.StatementError: a value its column type refuses.
        """
        rows = self._execute(sql, values, every=False, checked=checked)
        return sql.row(rows[0]) if rows else None

    def fetch_all(
        self, sql: DirectSQL, values: Mapping[str, Any], *, checked: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run the read ``sql`` once and return its rows (as :meth:`fetch_one` returns one)."""
        return [sql.row(raw) for raw in self._execute(sql, values, every=True, checked=checked)]

    def _execute(
        self, sql: DirectSQL, values: Mapping[str, Any], *, every: bool, checked: bool
    ) -> list[Any]:
        """The first row of ``sql`` (in a list, or none), or every row, as the driver gives them."""
        params = sql.parameters(values)
        fairy = self._checkout(sql, params, checked=checked)
        connection: Any = None
        try:
            connection = fairy.dbapi_connection
            # psycopg's cursors are kept per statement; sqlite3's are made per call
            # (they have no ``closed``, and preparing a statement costs SQLite little).
            cursors: dict[str, Any] = fairy.info.setdefault(_CURSORS, {}) if self.writes else {}
            cursor: Any = cursors.get(sql.text)
            try:
                if cursor is None or cursor.closed or cursor.connection is not connection:
                    cursor = connection.cursor()
                    if self.writes:
                        cursors[sql.text] = cursor
                rows = _send(self._engine, cursor, sql, params, every=every)
            except self._dbapi_error as exc:
                cursors.pop(sql.text, None)
                lost = _invalidated(self._dialect, fairy, exc, connection, cursor)
                raise self._wrap(sql, params, exc, lost=lost) from exc
            finally:
                if not self.writes and cursor is not None:
                    cursor.close()
        finally:
            _release(fairy, connection, self._idle, self._dbapi_error)
        return rows

    @contextlib.contextmanager
    def transaction(self, begin: str, committing: Callable[[], None]) -> Iterator[DirectWork]:
        """A write transaction on a pooled connection: ``begin`` sent, committed at the end.

        For SQLite (``BEGIN IMMEDIATE``: the write lock is taken first), whose
        driver begins nothing by itself once a transaction is open. The body
        sends statements through the :class:`DirectWork` it is given; when it
        returns, ``committing`` is called and the transaction committed; when
        it raises, the transaction is rolled back (a connection that cannot
        roll back is discarded). Observers are told ``BEGIN``, each
        statement's verb, and ``COMMIT`` or ``ROLLBACK``.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver failed (as :meth:`fetch_one`).
        """
        text = DirectSQL(begin, "BEGIN", ())
        fairy = self._checkout(text, {})
        work = DirectWork(self._engine, fairy, self._dbapi_error, self._wrap)
        try:
            work.send(text)
            try:
                yield work
                committing()
                work.end("COMMIT")
            except BaseException:
                work.end("ROLLBACK")
                raise
        finally:
            _release(fairy, fairy.dbapi_connection, self._idle, self._dbapi_error)

    def _checkout(self, sql: DirectSQL, params: _Params, *, checked: bool = True) -> Any:
        """A pooled connection, for ``sql``; a failure to connect wrapped as SQLAlchemy wraps it.

        Unless ``checked``, without the pool's closed-by-server check.
        """
        check = None if checked else self._check
        if check is not None:
            check.skip(once=True)
        try:
            return self._engine.raw_connection()
        except self._dbapi_error as exc:
            lost = bool(self._dialect.is_disconnect(exc, None, None))
            raise self._wrap(sql, params, exc, lost=lost) from exc
        finally:
            if check is not None:
                check.skip(once=False)

    def _wrap(self, sql: DirectSQL, params: _Params, exc: Any, *, lost: bool) -> BaseException:
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


class DirectWork:
    """The statements of one :meth:`Direct.transaction`, sent on its connection.

    Args:
        engine: the engine (whose observers are told each statement).
        fairy: the pooled connection.
        error: the driver's ``Error`` class.
        wrap: turns a driver error into SQLAlchemy's (``Direct``'s wrapping).
    """

    def __init__(
        self,
        engine: Engine,
        fairy: Any,
        error: type[Any],
        wrap: Callable[..., BaseException],
    ) -> None:
        self._engine = engine
        self._fairy = fairy
        self._connection: Any = fairy.dbapi_connection
        self._error = error
        self._wrap = wrap

    def fetch_one(self, sql: DirectSQL, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run ``sql`` and return its first row, converted as :meth:`Direct.fetch_one` does."""
        rows = self._run(sql, sql.parameters(values), every=False)
        return sql.row(rows[0]) if rows else None

    def fetch_all(self, sql: DirectSQL, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run ``sql`` and return its rows, converted as :meth:`Direct.fetch_one` does."""
        return [sql.row(raw) for raw in self._run(sql, sql.parameters(values), every=True)]

    def send(self, sql: DirectSQL) -> None:
        """Run ``sql``, which has no parameters and returns nothing."""
        self._run(sql, {}, every=None)

    def send_text(self, text: str) -> None:
        """Run the statement ``text``, which has no parameters and returns nothing."""
        self._run(DirectSQL(text, text.split(None, 1)[0].upper(), ()), {}, every=None)

    def in_transaction(self) -> bool:
        """Whether the transaction is still open (SQLite ends it by itself on some errors)."""
        return bool(self._connection.in_transaction)

    def end(self, verb: str) -> None:
        """``COMMIT`` or ``ROLLBACK``; a connection that cannot roll back is discarded."""
        for callback in _observers.get(self._engine, ()):
            callback(verb)
        connection = self._connection
        try:
            if verb == "COMMIT":
                connection.commit()
            else:
                connection.rollback()
        except self._error as exc:
            lost = bool(self._engine.dialect.is_disconnect(exc, connection, None))
            if lost or verb != "COMMIT":
                self._fairy.invalidate(exc)
            if verb != "COMMIT":
                return  # the failure that made us roll back is the one to raise
            raise self._wrap(DirectSQL(verb, verb, ()), {}, exc, lost=lost) from exc

    def _run(self, sql: DirectSQL, params: _Params, *, every: bool | None) -> list[Any]:
        connection = self._connection
        cursor: Any = None
        try:
            cursor = connection.cursor()
            rows = _send(self._engine, cursor, sql, params, every=every)
        except self._error as exc:
            lost = _invalidated(self._engine.dialect, self._fairy, exc, connection, cursor)
            raise self._wrap(sql, params, exc, lost=lost) from exc
        finally:
            if cursor is not None:
                cursor.close()
        return rows


def _send(
    engine: Engine,
    cursor: Any,
    sql: DirectSQL,
    params: _Params,
    *,
    every: bool | None,
) -> list[Any]:
    """Tell ``engine``'s observers, run ``sql`` on ``cursor``: every row, the first, or none.

    ``every`` is ``True`` for every row, ``False`` for the first (in a list,
    empty when there is none), ``None`` for a statement that returns nothing.
    """
    for callback in _observers.get(engine, ()):
        callback(sql.verb)
    cursor.execute(sql.query, params)
    if every is None:
        return []
    if every:
        rows: list[Any] = cursor.fetchall()
        return rows
    row = cursor.fetchone()
    return [] if row is None else [row]


def _invalidated(dialect: Any, fairy: Any, exc: Any, connection: Any, cursor: Any) -> bool:
    """Whether the driver error ``exc`` lost the connection (then discarded, not pooled)."""
    lost = bool(dialect.is_disconnect(exc, connection, cursor))
    if lost:
        fairy.invalidate(exc)
    return lost


def _release(fairy: Any, connection: Any, idle: Callable[[Any], bool], error: type[Any]) -> None:
    """Return ``fairy`` to its pool: without the reset's ``rollback()`` when nothing is open.

    The pool rolls back every connection returned to it; one the driver says
    has no transaction open (``connection``, ``None`` if never reached) has
    nothing to roll back, so it is returned as reset (the pool's ``reset``
    event still runs). Any other goes back the ordinary way, rolled back.
    """
    try:
        reset = connection is not None and fairy.dbapi_connection is connection and idle(connection)
    except error:  # the driver cannot tell (a closed connection): the ordinary way
        reset = False
    if reset and _CHECKIN_RESET is not None:
        _CHECKIN_RESET(fairy, transaction_reset=True)
    else:
        fairy.close()


#: SQLAlchemy's own return of a connection whose transaction was already ended (what its
#: ``Connection`` calls). Private: a release without it returns connections the ordinary way.
_CHECKIN_RESET: Final[Callable[..., None] | None] = getattr(
    getattr(pool_base, "_ConnectionFairy", None), "_close_special", None
)


def _psycopg_idle(connection: Any) -> bool:
    """Whether a psycopg connection is idle: connected, no transaction open, nothing running."""
    return bool(connection.pgconn.transaction_status == _PQ_IDLE)


def _sqlite3_idle(connection: Any) -> bool:
    """Whether a ``sqlite3`` connection has no transaction open."""
    return not connection.in_transaction


#: psycopg's ``pq.TransactionStatus.IDLE``: connected, not in a transaction block.
_PQ_IDLE: Final = 0
