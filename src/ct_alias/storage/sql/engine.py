"""Engines made from a URL, with the defaults the SQL storage relies on.

Statement parameters are hidden from error messages (they hold addresses).
PostgreSQL and MariaDB/MySQL connections are in autocommit mode for their whole
life: a read or a single-statement write is one round trip, with no isolation
switched at checkout, and a unit of work that needs a transaction sends its own
``BEGIN`` and ``COMMIT`` (see :mod:`.transactions`). There is no pre-ping: a
pooled connection whose socket the server has closed is replaced at checkout
without a round trip (:class:`ClosedByServer`; the direct path's first attempt
skips it), connections are recycled after :data:`POOL_RECYCLE_SECONDS`,
and a failure on a connection lost anyway is retried where that is safe.
MariaDB/MySQL run ``READ COMMITTED`` in ``utf8mb4``; SQLite files wait 30 s for
the write lock and use WAL, and SQLite in memory is one database shared by
every thread. Nothing here opens a connection.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from ...errors import ConfigurationError, MissingExtra
from ...vocabulary import MYSQL_DIALECTS

__all__ = [
    "POOL_RECYCLE_SECONDS",
    "SQLITE_BUSY_SECONDS",
    "ClosedByServer",
    "closed_by_server",
    "create_engine",
    "is_memory",
    "transaction_isolation",
]

#: How long a SQLite writer waits for the write lock held by another connection or process.
SQLITE_BUSY_SECONDS: Final = 30.0
#: Pooled server connections older than this are replaced (``pool_recycle``), before a
#: firewall, a proxy or the server's idle timeout drops them unnoticed.
POOL_RECYCLE_SECONDS: Final = 1800
#: The isolation of transactions on MariaDB/MySQL unless ``isolation_level`` says otherwise.
_MYSQL_ISOLATION: Final = "READ COMMITTED"
_ISOLATION_LEVELS: Final = frozenset(
    {"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"}
)
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


def create_engine(url: str | URL, options: Mapping[str, Any]) -> Engine:
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
        if is_memory(parsed):
            defaults["poolclass"] = StaticPool
        else:
            connect_args["timeout"] = SQLITE_BUSY_SECONDS
    else:
        options = _server_defaults(backend, options, defaults, connect_args)
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
    if backend == "sqlite":
        if not is_memory(parsed):
            event.listen(engine, "connect", _sqlite_wal)
    else:
        event.listen(engine, "checkout", ClosedByServer())
    return engine


def _server_defaults(
    backend: str, options: Mapping[str, Any], defaults: dict[str, Any], connect_args: dict[str, Any]
) -> Mapping[str, Any]:
    """Add a server database's defaults; return ``options`` without ``isolation_level``.

    Connections are in autocommit mode for their life; the isolation asked
    for becomes the session's default at connect (no round trip), for single
    statements and transactions alike.
    """
    rest = dict(options)
    isolation = _isolation(rest.pop("isolation_level", None))
    defaults["isolation_level"] = "AUTOCOMMIT"
    defaults["pool_recycle"] = POOL_RECYCLE_SECONDS
    if backend == "postgresql" and isolation is not None:
        level = isolation.lower().replace(" ", "\\ ")
        connect_args["options"] = f"-c default_transaction_isolation={level}"
    elif backend in MYSQL_DIALECTS:
        # PyMySQL would send a ROLLBACK after every read in autocommit mode.
        defaults["skip_autocommit_rollback"] = True
        level = isolation or _MYSQL_ISOLATION
        connect_args["init_command"] = f"SET SESSION TRANSACTION ISOLATION LEVEL {level}"
    return rest


def transaction_isolation(engine: Engine) -> str | None:
    """The isolation level a host's engine was configured with, if any.

    The storage begins its transactions with it on that engine's connections
    (which it uses in autocommit mode). Engines made by :func:`create_engine`
    need none: the level asked for is the session's default from the start.
    """
    level = getattr(engine.dialect, "_on_connect_isolation_level", None)
    return level if level in _ISOLATION_LEVELS else None


def _isolation(level: object) -> str | None:
    if level is None:
        return None
    if not isinstance(level, str) or level.upper() not in _ISOLATION_LEVELS:
        raise ConfigurationError(
            f"isolation_level must be one of {sorted(_ISOLATION_LEVELS)}, not {level!r}"
            " (the storage's connections are in autocommit mode already)"
        )
    return level.upper()


class ClosedByServer:
    """The checkout listener of :func:`_closed_by_server`, which a thread may skip once.

    The check is a ``poll()`` system call, which lets go of the interpreter's
    lock: with many threads busy, each checkout becomes a switch to another
    thread. The direct path (:mod:`.direct`) sends only statements that run
    again after a lost connection, so its first attempt skips the check (a
    connection the server closed then fails before anything ran, and is
    discarded) and its later attempts are checked.
    """

    def __init__(self) -> None:
        self._skipping = threading.local()

    def __call__(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        """Check a connection being checked out (unless this thread skips this checkout)."""
        skipping = self._skipping
        if getattr(skipping, "once", False):
            skipping.once = False  # only the checkout asked for, not one nested in it
            return
        _closed_by_server(dbapi_connection, record, proxy)

    def skip(self, *, once: bool) -> None:
        """Skip (``True``) the next check in this thread, or no longer (``False``)."""
        self._skipping.once = once


def closed_by_server(engine: Engine) -> ClosedByServer | None:
    """The :class:`ClosedByServer` listener of an engine made by :func:`create_engine`, if any."""
    for listener in engine.pool.dispatch.checkout:
        if isinstance(listener, ClosedByServer):
            return listener
    return None


def _closed_by_server(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Replace a pooled connection the server has closed, without a round trip.

    An idle connection has nothing to read unless the server ended it (a
    shutdown, ``pg_terminate_backend``, ``KILL``, an idle timeout): then its
    socket is readable (a farewell message, or end of file), and raising
    :class:`~sqlalchemy.exc.DisconnectionError` makes the pool discard it and
    check out another. A connection lost silently (a dropped route) is not
    seen here; the storage's retries handle that.
    """
    del record, proxy
    fileno = _socket(dbapi_connection)
    if fileno is None:
        return
    if _readable(fileno):
        raise sa_exc.DisconnectionError("the server closed the connection")


def _readable(fileno: int) -> bool:
    """Whether a socket has something to read (or is at end of file), without waiting."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fileno], [], [], 0)  # pragma: no cover - Windows
    return bool(readable)


def _socket(dbapi_connection: Any) -> int | None:
    """The file descriptor of a driver connection's socket (psycopg, PyMySQL), if known."""
    sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL
    try:
        fileno = sock.fileno() if sock is not None else dbapi_connection.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fileno if isinstance(fileno, int) and fileno >= 0 else None


def _normalise_url(url: URL) -> URL:
    """Choose our drivers for bare database names; ask MariaDB/MySQL for full UTF-8."""
    driver = _DEFAULT_DRIVERS.get(url.drivername)
    if driver is not None:
        url = url.set(drivername=driver)
    if url.get_backend_name() in MYSQL_DIALECTS and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def is_memory(url: URL) -> bool:
    """Whether ``url`` names a SQLite database in memory."""
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
