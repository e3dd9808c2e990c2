"""The SQL storage: :class:`SQLStorage` and :func:`upgrade`.

How get-or-create stays atomic and race-free on every database: the alias
table's ``key`` and ``slot`` are unique; a new alias is inserted with the
dialect's insert-or-ignore (``ON CONFLICT DO NOTHING`` on PostgreSQL and
SQLite, a no-op ``ON DUPLICATE KEY UPDATE`` on MariaDB/MySQL) and the winner is
read back; an unusable alias leaves its slot by a compare-and-set ``UPDATE``
(on its key *and* slot) in the same transaction. On PostgreSQL the common
case is one autocommit statement: read the slot and, only if it is empty,
insert the alias and its "created" entry (a data-modifying ``WITH``); a taken
or unusable slot falls back to that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import sqlalchemy as sa
from attrs import evolve
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from ...aliases import Alias
from ...errors import AliasCollision, ConfigurationError, InvalidArgument, StorageError
from ...timeline import TimelineEntry
from ..base import AliasChange, Erasure, Sealed, Tombstone
from .direct import DirectWork
from .engine import create_engine, is_memory, transaction_isolation
from .migrations import Migrator
from .schema import DEFAULT_PREFIX, SQLTables, build_tables
from .statements import (
    NEW_ENTRY_COLUMNS,
    Statements,
    alias_from_row,
    alias_values,
    entry_from_row,
    entry_values,
    first_row,
    record_from_row,
    rule_entry_from_row,
)
from .transactions import Contention, Transactions

__all__ = ["SQLStorage", "upgrade"]

T = TypeVar("T")

#: Rounds of get-or-create within one transaction before giving up on a contended slot.
_SLOT_ROUNDS: Final = 8


class SQLStorage:
    """An :class:`~ct_alias.storage.Storage` in a SQL database, through SQLAlchemy Core.

    Works with SQLite (``sqlite:///path.db``, or ``sqlite://`` in memory),
    PostgreSQL (``postgresql+psycopg://…``) and MariaDB/MySQL
    (``mysql+pymysql://…``). ``postgresql://`` and ``mysql://`` URLs use
    those drivers. It is thread-safe, and any number of processes may share
    one database.

    Args:
        url_or_engine: a database URL, or an :class:`~sqlalchemy.Engine` the
            host already has (the storage then neither configures nor disposes
            it: on SQLite set a busy timeout and WAL yourself; on PostgreSQL
            and MariaDB/MySQL an engine with ``isolation_level="AUTOCOMMIT"``
            saves switching the isolation at every checkout).
        prefix: prepended to the names of the storage's tables.
        schema: the PostgreSQL schema (or MariaDB/MySQL database) of the tables.
        **engine_options: passed to :func:`sqlalchemy.create_engine`, over the
            store's defaults (autocommit connections recycled after 30
            minutes, ``pool_recycle=1800``, no pre-ping; ``READ COMMITTED``
            transactions on MariaDB/MySQL; a 30 s busy timeout and WAL on
            SQLite files). ``isolation_level`` sets the isolation of the
            storage's statements and transactions (the connections stay in
            autocommit mode).

    Raises:
        ConfigurationError: a malformed URL, an unknown database, a bad prefix,
            or engine options given with an engine.
        MissingExtra: the database's driver is not installed.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        **engine_options: Any,
    ) -> None:
        self._tables = build_tables(prefix, schema)
        self._prefix = prefix
        self._schema = schema
        if isinstance(url_or_engine, Engine):
            if engine_options:
                raise ConfigurationError("engine options can only be given with a URL")
            engine = url_or_engine
            self._owns_engine = False
            isolation = transaction_isolation(engine)
        else:
            engine = create_engine(url_or_engine, engine_options)
            self._owns_engine = True
            isolation = None  # the session's default already
        self._engine = engine
        self._transactions = Transactions(engine, isolation=isolation)
        self._dialect = self._transactions.dialect
        self._migrator = Migrator(
            self._tables,
            dialect=self._dialect,
            database=engine.url.database or "",
            schema=schema,
            prefix=prefix,
            begin_writing=self._transactions.begin_writing,
        )
        self._sql = Statements(self._tables, self._dialect)
        # The hot statements, compiled for the direct path: the reads by key and by
        # conversation (PostgreSQL, SQLite) and the one-statement masks (PostgreSQL).
        direct = self._transactions.direct
        self._by_key = direct.compile(self._sql.by_key) if direct.possible else None
        self._by_conversation = (
            direct.compile(self._sql.by_conversation) if direct.possible else None
        )
        self._rule_pages = (
            {after: direct.compile(page) for after, page in self._sql.rule_pages.items()}
            if direct.possible
            else {}
        )
        # A recorded message (SQLite, where INSERT … RETURNING is there): the entry's
        # insert and its read by dedup key, for a write transaction sent directly.
        direct_writes = (
            direct.possible and self._dialect == "sqlite" and engine.dialect.insert_returning
        )
        self._entry_once = (
            direct.compile(self._sql.insert_entry_returning, NEW_ENTRY_COLUMNS)
            if direct_writes
            else None
        )
        self._entry_by_dedup = direct.compile(self._sql.entry_by_dedup) if direct_writes else None
        self._mask_direct = {
            statement: direct.compile(statement)
            for statement in self._sql.mask_statements.values()
            if direct.writes
        }
        self._sqlite_file = _sqlite_file(engine.url)

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"<SQLStorage {url} prefix={self._prefix!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the storage uses."""
        return self._engine

    @property
    def tables(self) -> SQLTables:
        """The store's tables, as SQLAlchemy Core tables."""
        return self._tables

    def close(self) -> None:
        """Close the pooled connections of the engine the storage created.

        An engine passed in by the host is left alone. The store can still
        be used afterwards: it opens new connections as needed (for SQLite in
        memory, ``sqlite://``, that is a new, empty database).
        """
        if self._owns_engine:
            self._engine.dispose()

    def dispose(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    # -- schema ----------------------------------------------------------------

    def upgrade(self) -> int:
        """Create the tables, or bring them up to date; safe to run again and concurrently.

        Returns:
            The schema version now in place.

        Raises:
            StorageError: the database failed (or refused the DDL).
        """
        return self._run(
            "upgrading the schema",
            self._migrator.apply,
            write=True,
            retry_lost=True,
            begin=False,
            creates=True,
        )

    def schema_version(self) -> int:
        """The schema version in place: 0 before :meth:`upgrade` ever ran.

        Raises:
            StorageError: the database failed.
        """
        if self._sqlite_file is not None and not self._sqlite_file.exists():
            return 0
        return self._run(
            "reading the schema version", self._migrator.version, write=False, retry_lost=True
        )

    # -- policies --------------------------------------------------------------

    def save_policy(self, store: str, data: Mapping[str, Any]) -> None:
        """See :meth:`PolicyStorage.save_policy <ct_alias.storage.PolicyStorage.save_policy>`.

        An update, else an insert; a concurrent insert of the same store makes
        the transaction run again (then it updates).
        """
        table = self._tables.policies
        values = {"data": dict(data), "updated_at": datetime.now(UTC)}

        def work(conn: Connection) -> None:
            changed = conn.execute(
                sa.update(table).where(table.c.store == store).values(**values)
            ).rowcount
            if changed:
                return
            try:
                conn.execute(sa.insert(table).values(store=store, **values))
            except sa.exc.IntegrityError:
                raise Contention() from None

        self._run("saving a policy", work, write=True, retry_lost=True)

    def policies(self) -> dict[str, Mapping[str, Any]]:
        """See :meth:`PolicyStorage.policies <ct_alias.storage.PolicyStorage.policies>`."""
        table = self._tables.policies

        def work(conn: Connection) -> dict[str, Mapping[str, Any]]:
            rows = conn.execute(sa.select(table.c.store, table.c.data)).all()
            return {store: data for store, data in rows}  # noqa: C416

        return self._run("reading policies", work, write=False, retry_lost=True)

    # -- aliases ---------------------------------------------------------------

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """See :meth:`Storage.get_or_create`."""
        slot = candidate.slot
        if slot is None:
            raise InvalidArgument("candidate", "a candidate alias needs a slot")
        operation = "creating an alias"
        values = alias_values(candidate)
        once = self._sql.mask_once(values, entries)
        if once is not None:
            # PostgreSQL: read the slot, and insert into it if empty, in one statement
            # that may run again (a second run finds the alias the first inserted).
            statement, params = once
            self._check_file(operation)
            row = self._transactions.fetch_one(
                operation,
                self._mask_direct.get(statement),
                params,
                first_row(statement, params),
                write=True,
            )
            created = row is not None and bool(row[-1])
        else:
            # Elsewhere most calls find a usable alias: a plain read first.
            created = False
            row = self._run(operation, self._sql.read_slot(slot), write=False, retry_lost=True)
        if created:
            return candidate, True
        if row is not None:
            current = alias_from_row(row)
            if current.usable_at(now):
                return current, False
        # An unusable alias in the slot, an empty slot (not on PostgreSQL), or a race:
        # a transaction sorts it out (an empty slot is tried with an insert straight away).
        look_first = row is not None or once is not None

        def work(conn: Connection) -> tuple[Alias, bool]:
            return self._get_or_create(
                conn, candidate, values, now=now, entries=entries, look_first=look_first
            )

        # Masks waiting for SQLite's write lock together commit together (group commit).
        return self._run(operation, work, write=True, retry_lost=True, group=True)

    def _get_or_create(
        self,
        conn: Connection,
        candidate: Alias,
        values: dict[str, Any],
        *,
        now: datetime,
        entries: Sequence[TimelineEntry],
        look_first: bool,
    ) -> tuple[Alias, bool]:
        """Get-or-create inside a write transaction.

        Each round looks at the slot (a locking read on MariaDB/MySQL, which
        sees the latest committed row whatever the isolation level), returns
        a usable alias, retires an unusable one by compare-and-set, then
        inserts the candidate unless a unique key is taken. A taken key with
        a free slot is a collision; a taken slot means a concurrent caller
        won: the next round returns its alias.
        """
        sql = self._sql
        slot = {"slot": candidate.slot}
        conflicted = False
        for _ in range(_SLOT_ROUNDS):
            if look_first or conflicted:
                row = conn.execute(sql.by_slot_for_update, slot).first()
                if row is not None:
                    current = alias_from_row(row)
                    if current.usable_at(now):
                        return current, False
                    retire = {"b_key": current.key, "b_slot": candidate.slot}
                    if conn.execute(sql.retire, retire).rowcount != 1:
                        continue  # someone else changed it first: look again
                elif conflicted and conn.execute(sql.key_taken, {"key": candidate.key}).first():
                    raise AliasCollision()
            if sql.insert_alias(conn, values) is not None:
                for entry in entries:
                    self._append(conn, entry)
                return candidate, True
            conflicted = True
        raise StorageError("creating an alias: the slot stayed contended", transient=True)

    def get(self, key: str) -> Alias | Tombstone | None:
        """See :meth:`Storage.get`."""
        operation = "reading an alias"
        self._check_file(operation)
        row = self._transactions.fetch_one(
            operation, self._by_key, {"key": key}, self._sql.read_key(key)
        )
        return None if row is None else record_from_row(row)

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        """See :meth:`Storage.aliases`."""
        statement = self._sql.by_conversation
        params = {"store": store, "conversation": conversation}

        def work(conn: Connection) -> list[Alias]:
            return [alias_from_row(row) for row in conn.execute(statement, params)]

        operation = "listing aliases"
        self._check_file(operation)
        return self._transactions.fetch_all(
            operation, self._by_conversation, params, work, alias_from_row
        )

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """See :meth:`Storage.update`."""
        if not changes and not entries:
            return [], []
        sql = self._sql

        def work(conn: Connection) -> tuple[list[Alias], list[TimelineEntry]]:
            keys = []
            for change in changes:
                params = {
                    "b_key": change.key,
                    "status": change.status.value,
                    "ends_at": change.ends_at,
                    "revoked_at": change.revoked_at,
                }
                if conn.execute(sql.change, params).rowcount:
                    keys.append(change.key)
            changed: list[Alias] = []
            if keys:
                found = {
                    row[0]: alias_from_row(row) for row in conn.execute(sql.by_keys, {"keys": keys})
                }
                changed = [found[key] for key in keys]
            stored = [self._append(conn, entry)[0] for entry in entries]
            return changed, stored

        idempotent = all(entry.dedup_key is not None for entry in entries)
        return self._run("updating aliases", work, write=True, retry_lost=idempotent)

    def purge(self, *, before: datetime, now: datetime) -> int:
        """See :meth:`Storage.purge`."""
        statement = self._sql.purge(before, now)

        def work(conn: Connection) -> int:
            return conn.execute(statement).rowcount

        return self._run("purging aliases", work, write=True, retry_lost=True)

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """See :meth:`Storage.scan`."""
        params: dict[str, Any] = {"limit": limit}
        statement = self._sql.scan_first
        if after is not None:
            statement = self._sql.scan_after
            params["after"] = after

        def work(conn: Connection) -> list[Alias]:
            return [alias_from_row(row) for row in conn.execute(statement, params)]

        return self._run("scanning aliases", work, write=False, retry_lost=True)

    def reseal(self, records: Sequence[Sealed]) -> int:
        """See :meth:`Storage.reseal`."""
        if not records:
            return 0
        statement = self._sql.reseal

        def work(conn: Connection) -> int:
            done = 0
            for sealed in records:
                params = {
                    "b_key": sealed.key,
                    "address": sealed.address,
                    "real_address": sealed.real_address,
                }
                done += conn.execute(statement, params).rowcount
            return done

        return self._run("resealing aliases", work, write=True, retry_lost=True)

    # -- erasure ---------------------------------------------------------------

    def owned(self, owner: str) -> list[Alias | Tombstone]:
        """See :meth:`ErasureStorage.owned <ct_alias.storage.ErasureStorage.owned>`."""
        statement = self._sql.by_owner
        params = {"owner": owner}

        def work(conn: Connection) -> list[Alias | Tombstone]:
            return [record_from_row(row) for row in conn.execute(statement, params)]

        return self._run("finding a person's aliases", work, write=False, retry_lost=True)

    def unowned(self, *, after: str | None, limit: int) -> list[Alias]:
        """See :meth:`ErasureStorage.unowned <ct_alias.storage.ErasureStorage.unowned>`."""
        params: dict[str, Any] = {"limit": limit}
        statement = self._sql.unowned_first
        if after is not None:
            statement = self._sql.unowned_after
            params["after"] = after

        def work(conn: Connection) -> list[Alias]:
            return [alias_from_row(row) for row in conn.execute(statement, params)]

        return self._run("scanning aliases without owner", work, write=False, retry_lost=True)

    def set_owners(self, owners: Mapping[str, str]) -> int:
        """See :meth:`ErasureStorage.set_owners <ct_alias.storage.ErasureStorage.set_owners>`."""
        if not owners:
            return 0
        statement = self._sql.set_owner

        def work(conn: Connection) -> int:
            return sum(
                conn.execute(statement, {"b_key": key, "owner": owner}).rowcount
                for key, owner in owners.items()
            )

        return self._run("backfilling owners", work, write=True, retry_lost=True)

    def erase(self, erasure: Erasure) -> tuple[int, int]:
        """See :meth:`ErasureStorage.erase <ct_alias.storage.ErasureStorage.erase>`."""
        sql = self._sql

        def work(conn: Connection) -> tuple[int, int]:
            changed = redacted = 0
            for tomb in erasure.tombstones:
                params = {
                    "b_key": tomb.key,
                    "address": None,
                    "real_address": None,
                    "slot": None,
                    "owner": None,
                    "purged_at": tomb.purged_at,
                    "expired_at": tomb.expired_at,
                    "expiry_reason": tomb.reason.value,
                }
                done = conn.execute(sql.erase_alias, params).rowcount
                if not done:
                    done = conn.execute(sql.erase_tombstone, {"b_key": tomb.key}).rowcount
                changed += done
            for entry in erasure.redactions:
                redaction: dict[str, Any] = {
                    "b_seq": entry.seq,
                    "b_store": entry.store,
                    "b_conversation": entry.conversation,
                    "data": entry.data,
                }
                redacted += conn.execute(sql.redact, redaction).rowcount
            for entry in erasure.entries:
                self._append(conn, entry)
            return changed, redacted

        return self._run("erasing a person", work, write=True, retry_lost=False)

    # -- timeline --------------------------------------------------------------

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """See :meth:`Storage.append`."""

        def work(conn: Connection) -> tuple[TimelineEntry, bool]:
            return self._append(conn, entry)

        # One statement (two when a dedup key is taken) that needs no transaction around it.
        retry_lost = entry.dedup_key is not None
        return self._run(
            "appending to a timeline", work, write=True, retry_lost=retry_lost, single=True
        )

    def append_made(
        self,
        conversation: str,
        *,
        store: str,
        make: Callable[[list[Alias]], TimelineEntry],
    ) -> tuple[TimelineEntry, bool]:
        """See :meth:`ParticipantsAppend.append_made <ct_alias.storage.ParticipantsAppend>`.

        One write transaction: the conversation's aliases are read in it, so
        they are those of the moment the entry is written. On SQLite it is
        sent straight on the ``sqlite3`` connection (see :mod:`.direct`), and
        appends waiting for the write lock together are committed together,
        each in a savepoint (``Transactions.write_direct``): one
        commit, one ``fsync``, for all of them.
        """
        statement = self._sql.by_conversation
        params = {"store": store, "conversation": conversation}

        def made(participants: list[Alias]) -> TimelineEntry:
            entry = make(participants)
            if entry.dedup_key is None or (entry.store, entry.conversation) != (
                store,
                conversation,
            ):
                raise InvalidArgument(
                    "make", "must return an entry of this conversation with a dedup_key"
                )
            return entry

        def work(conn: Connection) -> tuple[TimelineEntry, bool]:
            participants = [alias_from_row(row) for row in conn.execute(statement, params)]
            return self._append(conn, made(participants))

        operation = "appending to a timeline"
        self._check_file(operation)
        insert, by_dedup, read = self._entry_once, self._entry_by_dedup, self._by_conversation
        if insert is None or by_dedup is None or read is None:
            # The entry has a dedup key: run again after a lost connection, it is written once.
            return self._run(operation, work, write=True, retry_lost=True)

        def direct(conn: DirectWork) -> tuple[TimelineEntry, bool]:
            entry = made([alias_from_row(row) for row in conn.fetch_all(read, params)])
            row = conn.fetch_one(insert, entry_values(entry))
            if row is not None:
                return evolve(entry, seq=row[0]), True
            key = {"store": store, "conversation": conversation, "dedup_key": entry.dedup_key}
            found = conn.fetch_one(by_dedup, key)
            if found is None:  # the conflicting entry is not visible yet: run it again
                raise Contention()
            return entry_from_row(found), False

        return self._transactions.write_direct(operation, direct, work, retry_lost=True, group=True)

    def _append(self, conn: Connection, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        sql = self._sql
        values = entry_values(entry)
        if entry.dedup_key is None:
            inserted = conn.execute(sql.insert_entry, values).inserted_primary_key
            return evolve(entry, seq=inserted[0] if inserted else None), True
        seq = sql.insert_entry_once(conn, values)
        if seq is not None:
            return evolve(entry, seq=seq), True
        key = {
            "store": entry.store,
            "conversation": entry.conversation,
            "dedup_key": entry.dedup_key,
        }
        row = conn.execute(sql.entry_by_dedup, key).first()
        if row is None:  # the conflicting entry is not visible yet: run the transaction again
            raise Contention()
        return entry_from_row(row), False

    def entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """See :meth:`Storage.entries`."""
        statement, params = self._sql.entries(store, conversation, after, limit)

        def work(conn: Connection) -> list[TimelineEntry]:
            return [entry_from_row(row) for row in conn.execute(statement, params)]

        return self._run("reading a timeline", work, write=False, retry_lost=True)

    def rule_entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[TimelineEntry]:
        """See :meth:`RuleScan.rule_entries <ct_alias.storage.RuleScan.rule_entries>`."""
        statement, params = self._sql.rule_entries(store, conversation, after, limit)

        def work(conn: Connection) -> list[TimelineEntry]:
            return [rule_entry_from_row(row) for row in conn.execute(statement, params).all()]

        operation = "reading a timeline"
        self._check_file(operation)
        direct = self._rule_pages.get(after is not None)
        return self._transactions.fetch_all(operation, direct, params, work, rule_entry_from_row)

    def entry_count(self, conversation: str, *, store: str) -> int:
        """See :meth:`EntryCount.entry_count <ct_alias.storage.EntryCount.entry_count>`."""
        statement = self._sql.entry_count
        params = {"store": store, "conversation": conversation}

        def work(conn: Connection) -> int:
            return int(conn.execute(statement, params).scalar_one())

        return self._run("counting a timeline", work, write=False, retry_lost=True)

    def store_messages(
        self,
        store: str,
        *,
        since: datetime,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[TimelineEntry]:
        """See :meth:`MessageScan.store_messages <ct_alias.storage.MessageScan.store_messages>`."""
        at, seq = (since, -1) if after is None else max(after, (since, -1))
        params = {"store": store, "at": at, "seq": seq, "limit": limit}
        statement = self._sql.store_messages

        def work(conn: Connection) -> list[TimelineEntry]:
            return [entry_from_row(row) for row in conn.execute(statement, params)]

        return self._run("reading a store's messages", work, write=False, retry_lost=True)

    def _run(
        self,
        operation: str,
        work: Callable[[Connection], T],
        *,
        write: bool,
        retry_lost: bool,
        begin: bool = True,
        single: bool = False,
        creates: bool = False,
        group: bool = False,
    ) -> T:
        """Run ``work`` (see :meth:`Transactions.run`).

        Only ``upgrade()`` (``creates``) may create a SQLite file: any other
        operation on a missing file fails without leaving an empty one behind.
        """
        if not creates:
            self._check_file(operation)
        return self._transactions.run(
            operation,
            work,
            write=write,
            retry_lost=retry_lost,
            begin=begin,
            single=single,
            group=group,
        )

    def _check_file(self, operation: str) -> None:
        """Refuse to work on a SQLite file that does not exist (rather than create it)."""
        if self._sqlite_file is not None and not self._sqlite_file.exists():
            raise StorageError(
                operation,
                detail=f"the SQLite file {str(self._sqlite_file)!r} does not exist",
                transient=False,
                schema_missing=True,
            )


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite database URL; None for other databases, memory and URI filenames."""
    if url.get_backend_name() != "sqlite" or is_memory(url) or url.query.get("uri"):
        return None
    return Path(url.database or "")


def upgrade(
    target: str | URL | Engine | SQLStorage,
    *,
    prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    **engine_options: Any,
) -> int:
    """Create ct_alias's tables, or migrate them to :data:`SCHEMA_VERSION`.

    Idempotent (running it again does nothing) and safe to run from several
    processes at once. Run it when deploying, never from a constructor.

    Args:
        target: a database URL, an engine, or a :class:`SQLStorage` (whose
            prefix and schema are then used).
        prefix: the table name prefix (ignored for a store).
        schema: the PostgreSQL schema, created if missing, or MariaDB/MySQL
            database (ignored for a store).
        **engine_options: for :func:`sqlalchemy.create_engine`, with a URL.

    Returns:
        The schema version now in place.

    Raises:
        StorageError: the database failed.
        ConfigurationError: a bad URL, prefix or option.
        MissingExtra: the database's driver is not installed.
    """
    if isinstance(target, SQLStorage):
        return target.upgrade()
    with SQLStorage(target, prefix=prefix, schema=schema, **engine_options) as store:
        return store.upgrade()
