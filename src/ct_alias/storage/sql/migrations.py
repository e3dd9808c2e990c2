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
from ...vocabulary import DEFAULT_STORE, MAX_STORE, MYSQL_DIALECTS
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


def _conversations_per_store(conn: Connection, tables: SQLTables) -> None:
    """Version 2: a conversation is keyed by (store, conversation), its timeline too.

    Version 1 kept timelines by conversation alone, so two stores that number
    an order alike shared one. Each entry moves to the store of the aliases
    it names (a message's participants, an alias event's ``ref``); an entry
    naming none goes to the store of its conversation's aliases, and where
    those belong to several stores it is copied to each (each store keeps
    what it saw before). Entries of a conversation without aliases go to the
    default store. PostgreSQL and MariaDB/MySQL change the table in place;
    SQLite, which cannot drop a constraint, rebuilds it.
    """
    timeline = tables.timeline
    schema = tables.metadata.schema
    inspector = sa.inspect(conn)
    columns = {c["name"]: c for c in inspector.get_columns(timeline.name, schema=schema)}
    if "store" in columns and not columns["store"]["nullable"]:
        return  # made by step 1 of this release: already per store
    if conn.dialect.name == "sqlite":
        _rebuild_timeline(conn, tables)
    else:
        _alter_timeline(conn, tables, has_store="store" in columns)
    _split_shared_conversations(conn, tables)
    _reindex_aliases(conn, tables)
    if conn.dialect.name != "sqlite":
        _store_not_null(conn, tables)


def _old_index(table: sa.Table, name: str, *columns: str) -> sa.Index:
    """An index of the previous version, by name, on a throwaway copy of ``table``."""
    copy = sa.Table(table.name, sa.MetaData(schema=table.schema), *(sa.Column(c) for c in columns))
    return sa.Index(name, *(copy.c[c] for c in columns))


def _store_of_aliases(
    tables: SQLTables, conversation: sa.ColumnElement[str]
) -> sa.ScalarSelect[str]:
    aliases = tables.aliases
    return (
        sa.select(sa.func.min(aliases.c.store))
        .where(aliases.c.conversation == conversation)
        .scalar_subquery()
    )


def _alter_timeline(conn: Connection, tables: SQLTables, *, has_store: bool) -> None:
    timeline = tables.timeline
    prefix = timeline.name.removesuffix("timeline")
    quoted = conn.dialect.identifier_preparer.format_table(timeline)
    column = sa.String(MAX_STORE).compile(dialect=conn.dialect)
    if not has_store:
        conn.execute(sa.text(f"ALTER TABLE {quoted} ADD COLUMN store {column} NULL"))
    conn.execute(
        sa.update(timeline).values(
            store=sa.func.coalesce(
                _store_of_aliases(tables, timeline.c.conversation), DEFAULT_STORE
            )
        )
    )
    existing = {
        ix["name"] for ix in sa.inspect(conn).get_indexes(timeline.name, schema=timeline.schema)
    }
    uniques = sa.inspect(conn).get_unique_constraints(timeline.name, schema=timeline.schema)
    existing |= {uq["name"] for uq in uniques}
    dedup = f"{prefix}timeline_dedup_uq"
    order = f"{prefix}timeline_order_ix"
    if dedup in existing:
        old = sa.UniqueConstraint("conversation", "dedup_key", name=dedup)
        sa.Table(
            timeline.name,
            sa.MetaData(schema=timeline.schema),
            sa.Column("conversation"),
            sa.Column("dedup_key"),
            old,
        )
        conn.execute(sa.schema.DropConstraint(old))
    if order in existing:
        conn.execute(sa.schema.DropIndex(_old_index(timeline, order, "conversation", "at", "seq")))
    for constraint in timeline.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            conn.execute(sa.schema.AddConstraint(constraint))
    for index in timeline.indexes:
        index.create(conn)


def _store_not_null(conn: Connection, tables: SQLTables) -> None:
    timeline = tables.timeline
    quoted = conn.dialect.identifier_preparer.format_table(timeline)
    if conn.dialect.name in MYSQL_DIALECTS:
        column = sa.String(MAX_STORE).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {quoted} MODIFY store {column} NOT NULL"))
    else:
        conn.execute(sa.text(f"ALTER TABLE {quoted} ALTER COLUMN store SET NOT NULL"))


def _rebuild_timeline(conn: Connection, tables: SQLTables) -> None:
    """SQLite: rename the old table away, create the new one, copy, drop the old."""
    timeline = tables.timeline
    prefix = timeline.name.removesuffix("timeline")
    preparer = conn.dialect.identifier_preparer
    old_name = f"{timeline.name}_v1"
    conn.execute(
        sa.schema.DropIndex(
            _old_index(timeline, f"{prefix}timeline_order_ix", "conversation", "at", "seq"),
            if_exists=True,
        )
    )
    conn.execute(
        sa.text(
            f"ALTER TABLE {preparer.format_table(timeline)} RENAME TO {preparer.quote(old_name)}"
        )
    )
    timeline.create(conn)
    old = sa.table(
        old_name,
        *(sa.column(c) for c in ("seq", "conversation", "at", "kind", "name", "data", "dedup_key")),
        schema=timeline.schema,
    )
    store = sa.func.coalesce(_store_of_aliases(tables, old.c.conversation), DEFAULT_STORE)
    columns = ["seq", "conversation", "at", "kind", "name", "data", "dedup_key"]
    conn.execute(
        sa.insert(timeline).from_select(
            [*columns, "store"], sa.select(*(old.c[c] for c in columns), store)
        )
    )
    conn.execute(sa.text(f"DROP TABLE {preparer.quote(old_name)}"))


def _split_shared_conversations(conn: Connection, tables: SQLTables) -> None:
    """Move the entries of conversations that several stores share to the right store(s)."""
    aliases = tables.aliases
    timeline = tables.timeline
    shared = (
        conn.execute(
            sa.select(aliases.c.conversation)
            .group_by(aliases.c.conversation)
            .having(sa.func.count(sa.distinct(aliases.c.store)) > 1)
        )
        .scalars()
        .all()
    )
    for conversation in shared:
        owners = conn.execute(
            sa.select(aliases.c.key, aliases.c.store)
            .where(aliases.c.conversation == conversation)
            .order_by(aliases.c.created_at, aliases.c.id)
        ).all()
        store_of: dict[str, str] = {key: store for key, store in owners}  # noqa: C416
        stores = list(dict.fromkeys(store for _, store in owners))
        rows = conn.execute(
            sa.select(
                timeline.c.seq,
                timeline.c.at,
                timeline.c.kind,
                timeline.c.name,
                timeline.c.data,
                timeline.c.dedup_key,
            ).where(timeline.c.conversation == conversation)
        ).all()
        for seq, at, kind, name, entry_data, dedup_key in rows:
            named = [store_of[ref] for ref in _refs(entry_data) if ref in store_of]
            targets = list(dict.fromkeys(named)) or stores
            conn.execute(sa.update(timeline).where(timeline.c.seq == seq).values(store=targets[0]))
            for store in targets[1:]:
                conn.execute(
                    sa.insert(timeline).values(
                        conversation=conversation,
                        store=store,
                        at=at,
                        kind=kind,
                        name=name,
                        data=entry_data,
                        dedup_key=dedup_key,
                    )
                )


def _refs(data: object) -> list[str]:
    """The alias keys an entry's data names: ``ref``, and each participant's ``ref``."""
    if not isinstance(data, dict):
        return []
    found = [data["ref"]] if isinstance(data.get("ref"), str) else []
    for field in ("from", "to", "cc"):
        items = data.get(field)
        if isinstance(items, list):
            found += [
                i["ref"] for i in items if isinstance(i, dict) and isinstance(i.get("ref"), str)
            ]
    return found


def _reindex_aliases(conn: Connection, tables: SQLTables) -> None:
    """Aliases are listed by (store, conversation): index that, not conversation alone."""
    aliases = tables.aliases
    prefix = aliases.name.removesuffix("aliases")
    existing = {
        ix["name"] for ix in sa.inspect(conn).get_indexes(aliases.name, schema=aliases.schema)
    }
    old = f"{prefix}aliases_conversation_ix"
    if old in existing:
        conn.execute(sa.schema.DropIndex(_old_index(aliases, old, "conversation")))
    columns = {c["name"] for c in sa.inspect(conn).get_columns(aliases.name, schema=aliases.schema)}
    for index in aliases.indexes:
        # an index of a later version's column is made by that version's step
        if index.name not in existing and {c.name for c in index.columns} <= columns:
            index.create(conn)


def _create_policies(conn: Connection, tables: SQLTables) -> None:
    """Version 3: the stores' policies are kept in the database (one row per store)."""
    tables.metadata.create_all(conn, tables=[tables.policies], checkfirst=True)


def _add_owners(conn: Connection, tables: SQLTables) -> None:
    """Version 4: each alias names its owner (the person it masks), indexed, for erasure.

    The column is added empty: its value is a keyed hash of the real address,
    which needs the index key (and, for sealed addresses, the address keys)
    that a schema upgrade does not have. The tracker fills it in
    (:meth:`Tracker.backfill_owners <ct_alias.Tracker.backfill_owners>`,
    which :meth:`Tracker.forget <ct_alias.Tracker.forget>` runs first).
    Aliases purged before this version have no address left to hash: they
    keep no owner.
    """
    aliases = tables.aliases
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns(aliases.name, schema=aliases.schema)}
    if "owner" not in columns:
        quoted = conn.dialect.identifier_preparer.format_table(aliases)
        column = aliases.c.owner.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {quoted} ADD COLUMN owner {column} NULL"))
    _reindex_aliases(conn, tables)


#: Every migration step, oldest first. Never edit a released step: append a new one.
STEPS: tuple[MigrationStep, ...] = (
    MigrationStep(1, "create the alias and timeline tables", _create_tables),
    MigrationStep(2, "key conversations by store and conversation", _conversations_per_store),
    MigrationStep(3, "keep the stores' policies", _create_policies),
    MigrationStep(4, "name each alias's owner, for erasure", _add_owners),
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
