"""The schema's history, and the runner that applies it once, however many run it at once.

:data:`STEPS` lists every migration step, oldest first; the version table
records those applied. :func:`apply` runs the missing ones under a lock
(PostgreSQL: a transaction advisory lock; MariaDB/MySQL: a session
``GET_LOCK``, since their DDL commits at once; SQLite: ``BEGIN IMMEDIATE``),
so concurrent upgrades of the same tables apply each step once.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from attrs import frozen
from sqlalchemy import Connection

from ...errors import StorageError
from ...vocabulary import MYSQL_DIALECTS
from .schema import SQLTables

__all__ = ["SCHEMA_VERSION", "STEPS", "MigrationStep", "Migrator"]


@frozen
class MigrationStep:
    """One step of the schema's history, applied once, in order.

    Attributes:
        version: the schema version after this step.
        description: what it does (recorded in the version table).
        apply: runs the step's DDL on a connection inside a transaction.
    """

    version: int
    description: str
    apply: Callable[[Connection, SQLTables], None]


def _create_tables(conn: Connection, tables: SQLTables) -> None:
    tables.metadata.create_all(conn, tables=[tables.aliases, tables.timeline], checkfirst=True)


#: Every migration step, oldest first. Never edit a released step: append a new one.
STEPS: tuple[MigrationStep, ...] = (
    MigrationStep(1, "create the alias and timeline tables", _create_tables),
)

#: The schema version this release of ct_alias writes and reads.
SCHEMA_VERSION = STEPS[-1].version


class Migrator:
    """Applies :data:`STEPS` to one set of tables, and reads their version.

    Args:
        tables: the tables.
        dialect: the database's SQLAlchemy dialect name.
        database: the database name (part of the lock's name).
        schema: the PostgreSQL schema (or MariaDB/MySQL database) of the tables.
        prefix: the tables' name prefix (part of the lock's name).
        begin_writing: starts a write transaction on a connection.
    """

    def __init__(
        self,
        tables: SQLTables,
        *,
        dialect: str,
        database: str,
        schema: str | None,
        prefix: str,
        begin_writing: Callable[[Connection], None],
    ) -> None:
        self._tables = tables
        self._dialect = dialect
        self._database = database
        self._schema = schema
        self._prefix = prefix
        self._begin_writing = begin_writing

    def apply(self, conn: Connection) -> int:
        """Apply the steps not applied yet; return the version now in place."""
        return self._upgrade(conn)

    def version(self, conn: Connection) -> int:
        """The version in place: 0 before any step ran."""
        return self._version(conn)

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
        database = self._database
        name = f"{database}.{self._schema or ''}.{self._prefix}".encode()
        return hashlib.blake2b(name, digest_size=8, person=b"ct_alias.upgrade").digest()

    @contextlib.contextmanager
    def _upgrade_lock(self, conn: Connection) -> Iterator[None]:
        """Serialise concurrent upgrades of the same tables.

        MariaDB/MySQL commit DDL at once, so a session lock spans the whole
        upgrade there; PostgreSQL takes a transaction lock in the upgrade's
        transaction, and SQLite's ``BEGIN IMMEDIATE`` is a lock already.
        """
        if self._dialect not in MYSQL_DIALECTS:
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
