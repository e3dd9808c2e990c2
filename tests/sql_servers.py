"""The PostgreSQL and MariaDB servers the SQL store tests run against.

Each test session (each xdist worker) gets its own PostgreSQL schema and its
own MariaDB database, created at the start and dropped at the end, so
parallel workers and concurrent CI jobs never see each other's rows.

A server that cannot be reached is skipped locally, but fails the run when
the ``CI`` environment variable is set: CI must not go green by skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from ct_alias.storage.sql import SQLStorage, upgrade

POSTGRES_URL = os.environ.get(
    "CT_ALIAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("CT_ALIAS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def unique_name(worker: str) -> str:
    """A database object name nobody else uses: ``ct_test_<worker>_<random>``."""
    return f"ct_test_{worker.replace('-', '_')[:8]}_{secrets.token_hex(4)}"


def _unreachable(what: str, exc: Exception) -> None:
    message = f"{what} is unreachable ({type(exc).__name__}: {exc})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


def _admin_engine(url: str | URL, backend: str) -> sa.Engine:
    connect_args = {"connect_timeout": 3}
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        _unreachable(f"{backend} at {make_url(url).render_as_string(hide_password=True)}", exc)
    return engine


@contextmanager
def postgres_schema(worker: str) -> Iterator[tuple[str, str]]:
    """A fresh schema on the PostgreSQL test server, dropped afterwards: yields (url, schema)."""
    engine = _admin_engine(POSTGRES_URL, "PostgreSQL")
    schema = unique_name(worker)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield POSTGRES_URL, schema
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


@contextmanager
def mysql_database(worker: str) -> Iterator[str]:
    """A fresh database on the test MariaDB server: yields its URL; dropped afterwards."""
    engine = _admin_engine(MYSQL_URL, "MariaDB")
    database = unique_name(worker)
    with engine.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
    try:
        url = make_url(MYSQL_URL).set(database=database)
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
        engine.dispose()


# -- fixtures (registered in tests/conftest.py) ---------------------------------------


@dataclass
class Target:
    """Where a backend's test store lives: a URL and the store options (schema, prefix)."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def open(self, **more: Any) -> SQLStorage:
        return SQLStorage(self.url, **{**self.options, **more})


def clear(store: SQLStorage) -> None:
    with store.engine.begin() as conn:
        conn.execute(store.tables.timeline.delete())
        conn.execute(store.tables.aliases.delete())
        conn.execute(store.tables.policies.delete())


# -- servers and stores ------------------------------------------------------------


@pytest.fixture(scope="session")
def worker(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def postgresql(worker: str) -> Iterator[Target]:
    with postgres_schema(worker) as (url, schema):
        yield Target("postgresql", url, {"schema": schema})


@pytest.fixture(scope="session")
def mariadb(worker: str) -> Iterator[Target]:
    with mysql_database(worker) as url:
        yield Target("mariadb", url)


@pytest.fixture(scope="session")
def postgresql_store(postgresql: Target) -> Iterator[SQLStorage]:
    with postgresql.open() as store:
        store.upgrade()
        yield store


@pytest.fixture(scope="session")
def mariadb_store(mariadb: Target) -> Iterator[SQLStorage]:
    with mariadb.open() as store:
        store.upgrade()
        yield store


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """Each backend in turn; its tables exist and are empty."""
    if request.param == "sqlite":
        found = Target("sqlite", f"sqlite:///{tmp_path / 'ct.db'}")
        upgrade(found.url)
        return found
    store: SQLStorage = request.getfixturevalue(f"{request.param}_store")
    clear(store)
    found = request.getfixturevalue(request.param)
    assert isinstance(found, Target)
    return found


@pytest.fixture
def sql_store(target: Target) -> Iterator[SQLStorage]:
    with target.open() as store:
        yield store
