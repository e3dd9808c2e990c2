"""Engines made from a URL, with the defaults the SQL storage relies on.

Statement parameters are hidden from error messages (they hold addresses);
connections are checked before use (``pool_pre_ping``) so a dropped one is
replaced; MariaDB/MySQL run ``READ COMMITTED`` in ``utf8mb4``; SQLite files
wait 30 s for the write lock and use WAL, and SQLite in memory is one
database shared by every thread. Nothing here opens a connection.
"""

from __future__ import annotations

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

__all__ = ["SQLITE_BUSY_SECONDS", "create_engine", "is_memory"]

#: How long a SQLite writer waits for the write lock held by another connection or process.
SQLITE_BUSY_SECONDS: Final = 30.0
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
        defaults["pool_pre_ping"] = True
        if backend in MYSQL_DIALECTS:
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
    if backend == "sqlite" and not is_memory(parsed):
        event.listen(engine, "connect", _sqlite_wal)
    return engine


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
