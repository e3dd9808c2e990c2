"""The SQL storage's statements, built once, and the mapping between rows and records.

Statements are built once per storage so SQLAlchemy's compiled cache always
hits. :class:`InsertOnce` is insert-unless-a-unique-key-is-taken in each
dialect's own words; the ``*_values`` and ``*_from_row`` functions map
records to rows and back.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeAlias, cast

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.sql import ClauseElement, ColumnElement, Executable
from sqlalchemy.sql.schema import Table

from ...aliases import Alias, AliasStatus, Role
from ...errors import ExpiryReason
from ...timeline import EntryKind, TimelineEntry
from ...vocabulary import MYSQL_DIALECTS
from ..base import Tombstone
from .schema import SQLTables, UTCDateTime

__all__ = [
    "NEW_ALIAS_COLUMNS",
    "NEW_ENTRY_COLUMNS",
    "InsertOnce",
    "Statements",
    "alias_from_row",
    "alias_values",
    "entry_from_row",
    "entry_values",
    "first_row",
    "record_from_row",
]

DbRow: TypeAlias = "Row[*tuple[Any, ...]]"
MaskStatement: TypeAlias = "sa.CompoundSelect[*tuple[Any, ...]]"

_ALIAS_COLUMNS: Final = (
    "key",
    "slot",
    "address",
    "real_address",
    "conversation",
    "store",
    "role",
    "strategy",
    "created_at",
    "expires_at",
    "status",
    "ends_at",
    "revoked_at",
    "purged_at",
    "expired_at",
    "expiry_reason",
    "owner",
)
#: The columns a new alias record is written with (the others start NULL).
NEW_ALIAS_COLUMNS: Final = tuple(
    c for c in _ALIAS_COLUMNS if c not in {"purged_at", "expired_at", "expiry_reason"}
)
#: The columns a new timeline entry is written with (``seq`` is generated).
NEW_ENTRY_COLUMNS: Final = ("conversation", "store", "at", "kind", "name", "data", "dedup_key")
_ENTRY_COLUMNS: Final = (
    "conversation",
    "kind",
    "name",
    "at",
    "data",
    "dedup_key",
    "seq",
    "store",
)


class Statements:
    """The storage's statements, built once per storage so SQLAlchemy's compiled cache hits."""

    def __init__(self, tables: SQLTables, dialect: str) -> None:
        a = tables.aliases
        t = tables.timeline
        self._aliases = a
        self._timeline = t
        self._dialect = dialect
        columns = [a.c[name] for name in _ALIAS_COLUMNS]
        select_alias = sa.select(*columns)
        self.by_key = select_alias.where(a.c.key == sa.bindparam("key"))
        self.by_slot = select_alias.where(a.c.slot == sa.bindparam("slot"))
        # MariaDB/MySQL: a locking read sees the latest committed row whatever the isolation.
        locking = dialect in MYSQL_DIALECTS
        self.by_slot_for_update = self.by_slot.with_for_update() if locking else self.by_slot
        self.key_taken = sa.select(a.c.id).where(a.c.key == sa.bindparam("key"))
        self.retire = (
            sa.update(a)
            .where(a.c.key == sa.bindparam("b_key"), a.c.slot == sa.bindparam("b_slot"))
            .values(slot=None)
        )
        self.by_conversation = (
            select_alias.where(
                a.c.store == sa.bindparam("store"),
                a.c.conversation == sa.bindparam("conversation"),
            )
            .where(a.c.purged_at.is_(None))
            .order_by(a.c.created_at, a.c.id)
        )
        self.change = sa.update(a).where(a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None))
        self.by_keys = select_alias.where(a.c.key.in_(sa.bindparam("keys", expanding=True)))
        live = select_alias.where(a.c.purged_at.is_(None)).order_by(a.c.key)
        self.scan_first = live.limit(sa.bindparam("limit", type_=sa.Integer))
        self.scan_after = live.where(a.c.key > sa.bindparam("after")).limit(
            sa.bindparam("limit", type_=sa.Integer)
        )
        self.reseal = sa.update(a).where(a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None))
        self._insert_alias = InsertOnce(a, a.c.id, dialect)
        # erasure
        self.by_owner = select_alias.where(a.c.owner == sa.bindparam("owner")).order_by(a.c.key)
        unowned = live.where(a.c.owner.is_(None))
        self.unowned_first = unowned.limit(sa.bindparam("limit", type_=sa.Integer))
        self.unowned_after = unowned.where(a.c.key > sa.bindparam("after")).limit(
            sa.bindparam("limit", type_=sa.Integer)
        )
        self.set_owner = sa.update(a).where(
            a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None), a.c.owner.is_(None)
        )
        self.erase_alias = sa.update(a).where(
            a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_(None)
        )
        self.erase_tombstone = (
            sa.update(a)
            .where(a.c.key == sa.bindparam("b_key"), a.c.purged_at.is_not(None))
            .values(owner=None)
        )
        self.redact = sa.update(t).where(
            t.c.seq == sa.bindparam("b_seq", type_=sa.BigInteger),
            t.c.store == sa.bindparam("b_store"),
            t.c.conversation == sa.bindparam("b_conversation"),
        )

        entry_columns = [t.c[name] for name in _ENTRY_COLUMNS]
        select_entry = sa.select(*entry_columns)
        self.insert_entry = sa.insert(t)
        self._insert_entry_once = InsertOnce(t, t.c.seq, dialect)
        #: Insert an entry unless its dedup key is taken, returning its ``seq`` (if inserted).
        self.insert_entry_returning = self._insert_entry_once.statement
        by_dedup = select_entry.where(
            t.c.store == sa.bindparam("store"),
            t.c.conversation == sa.bindparam("conversation"),
            t.c.dedup_key == sa.bindparam("dedup_key"),
        )
        self.entry_by_dedup = by_dedup.with_for_update() if locking else by_dedup
        timeline = select_entry.where(
            t.c.store == sa.bindparam("store"), t.c.conversation == sa.bindparam("conversation")
        ).order_by(t.c.at, t.c.seq)
        later = _later(t, dialect)
        limit = sa.bindparam("limit", type_=sa.Integer)
        # the rules' fold: the data column as its text (see rule_entry_from_row), in pages
        rule_timeline = (
            sa.select(
                *(
                    sa.type_coerce(c, sa.Text()).label(c.name) if c.name == "data" else c
                    for c in entry_columns
                )
            )
            .where(
                t.c.store == sa.bindparam("store"), t.c.conversation == sa.bindparam("conversation")
            )
            .order_by(t.c.at, t.c.seq)
        )
        # an OFFSET given at each run (always 0): SQLite's LIMIT needs one, and a statement
        # sent directly (see .direct) has only parameters given at each run
        paged = rule_timeline.limit(limit).offset(sa.bindparam("offset", type_=sa.Integer))
        #: How many entries a conversation's timeline holds.
        self.entry_count = (
            sa.select(sa.func.count())
            .select_from(t)
            .where(
                t.c.store == sa.bindparam("store"), t.c.conversation == sa.bindparam("conversation")
            )
        )
        #: The statements of :meth:`rule_entries`, by whether they read after a position.
        self.rule_pages: Mapping[bool, sa.Select[Any]] = {False: paged, True: paged.where(later)}
        self.store_messages = (
            select_entry.where(
                t.c.store == sa.bindparam("store"),
                t.c.kind == EntryKind.MESSAGE.value,
                later,
            )
            .order_by(t.c.at, t.c.seq)
            .limit(limit)
        )
        #: The statements of :meth:`mask_once`, by number of entries (PostgreSQL only).
        self.mask_statements: Mapping[int, MaskStatement] = (
            {n: _mask_once(a, t, columns, n) for n in (0, 1)} if dialect == "postgresql" else {}
        )
        self._entries = {
            (False, False): timeline,
            (False, True): timeline.limit(limit),
            (True, False): timeline.where(later),
            (True, True): timeline.where(later).limit(limit),
        }

    def mask_once(
        self, values: Mapping[str, Any], entries: Sequence[TimelineEntry]
    ) -> tuple[MaskStatement, dict[str, Any]] | None:
        """Get-or-create in one statement, if this database and these entries allow it.

        PostgreSQL only (a data-modifying ``WITH``): the slot's current alias
        is read, and only when the slot is empty the candidate is inserted
        (``ON CONFLICT DO NOTHING``) with its entry (at most one, without a
        dedup key), all in one autocommit statement. Returns the statement
        (one of :attr:`mask_statements`) and its parameters; its one row is
        the slot's alias row and ``false`` when the slot was taken, only
        ``true`` (the other columns ``NULL``: the row is the candidate's) when
        the candidate was inserted, and there is no row when a concurrent
        caller or a key collision got in the way. ``None`` where this is not
        possible: then use a transaction.
        """
        if self._dialect != "postgresql" or len(entries) > 1:
            return None
        params = dict(values)
        for entry in entries:
            if entry.dedup_key is not None:
                return None
            params.update({f"e_{name}": value for name, value in entry_values(entry).items()})
        return self.mask_statements[len(entries)], params

    def read_key(self, key: str) -> Callable[[Connection], DbRow | None]:
        """Read the alias row of ``key``."""
        return first_row(self.by_key, {"key": key})

    def read_slot(self, slot: str) -> Callable[[Connection], DbRow | None]:
        """Read the alias row in ``slot``."""
        return first_row(self.by_slot, {"slot": slot})

    def insert_alias(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        """Insert an alias unless its key or slot is taken."""
        return self._insert_alias(conn, values)

    def insert_entry_once(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        """Insert an entry unless its dedup key is taken."""
        return self._insert_entry_once(conn, values)

    def entries(
        self, store: str, conversation: str, after: tuple[datetime, int] | None, limit: int | None
    ) -> tuple[Executable, dict[str, Any]]:
        """The statement and parameters reading a page of a conversation's timeline."""
        params: dict[str, Any] = {"store": store, "conversation": conversation}
        if after is not None:
            params["at"], params["seq"] = after
        if limit is not None:
            params["limit"] = limit
        return self._entries[after is not None, limit is not None], params

    def rule_entries(
        self, store: str, conversation: str, after: tuple[datetime, int] | None, limit: int
    ) -> tuple[Executable, dict[str, Any]]:
        """The statement and parameters reading a page of a timeline for the rules."""
        params: dict[str, Any] = {
            "store": store,
            "conversation": conversation,
            "limit": limit,
            "offset": 0,
        }
        if after is not None:
            params["at"], params["seq"] = after
        return self.rule_pages[after is not None], params

    def purge(self, before: datetime, now: datetime) -> Executable:
        """The statement turning aliases stopped before ``before`` into tombstones."""
        a = self._aliases
        revoked = a.c.status == AliasStatus.REVOKED.value
        ended_first = sa.and_(a.c.ends_at.is_not(None), a.c.ends_at < a.c.expires_at)
        stopped: ColumnElement[datetime] = sa.case(
            (revoked, sa.func.coalesce(a.c.revoked_at, a.c.created_at, type_=UTCDateTime())),
            (ended_first, a.c.ends_at),
            else_=a.c.expires_at,
        )
        reason = sa.case(
            (revoked, ExpiryReason.REVOKED.value),
            (ended_first, ExpiryReason.ENDED.value),
            else_=ExpiryReason.TTL.value,
        )
        cutoff = sa.literal(before, UTCDateTime())
        return (
            sa.update(a)
            .where(
                a.c.purged_at.is_(None),
                sa.or_(a.c.expires_at < cutoff, a.c.ends_at < cutoff, revoked),
                stopped < cutoff,
            )
            .values(
                address=None,
                real_address=None,
                slot=None,
                purged_at=sa.literal(now, UTCDateTime()),
                expired_at=stopped,
                expiry_reason=reason,
            )
        )


def first_row(
    statement: Executable, params: Mapping[str, Any]
) -> Callable[[Connection], DbRow | None]:
    """Work running ``statement`` once and returning its first row, or ``None``."""
    return lambda conn: conn.execute(statement, params).first()


def _later(t: Table, dialect: str) -> ColumnElement[bool]:
    """Entries after the cursor ``(:at, :seq)``, as a condition an index range can serve.

    PostgreSQL compares row values, ``(at, seq) > (:at, :seq)``, an index
    condition on ``(store, conversation, at, seq)``. MariaDB/MySQL and SQLite
    get ``at >= :at`` as the range, and the rest as a filter that only the
    entries at ``:at`` itself meet: a page costs the same however deep it is.
    """
    at = sa.bindparam("at", type_=UTCDateTime())
    seq = sa.bindparam("seq", type_=sa.BigInteger)
    if dialect == "postgresql":
        return sa.tuple_(t.c.at, t.c.seq) > sa.tuple_(at, seq)
    return sa.and_(t.c.at >= at, sa.or_(t.c.at > at, t.c.seq > seq))


def _mask_once(
    a: Table, t: Table, columns: Sequence[sa.Column[Any]], entries: int
) -> MaskStatement:
    """The one-statement get-or-create of :meth:`Statements.mask_once` (PostgreSQL).

    ::

        WITH current AS (SELECT … FROM aliases WHERE slot = :slot),
             inserted AS (INSERT INTO aliases (…) SELECT :key, :slot, …
                          WHERE NOT EXISTS (SELECT FROM current)
                          ON CONFLICT DO NOTHING RETURNING key),
             entry AS (INSERT INTO timeline (…) SELECT :e_conversation, … FROM inserted)
        SELECT current.*, false FROM current UNION ALL SELECT NULL, …, true FROM inserted

    An inserted row is the candidate's own: only whether it was inserted
    comes back, not its 17 columns again.
    """
    current = sa.select(*columns).where(a.c.slot == sa.bindparam("slot")).cte("current")
    # psycopg's dialect casts each parameter to its column's type (NULLs included).
    new = sa.select(*[sa.bindparam(name, type_=a.c[name].type) for name in NEW_ALIAS_COLUMNS])
    new = new.where(~sa.select(sa.literal_column("1")).select_from(current).exists())
    inserted = (
        postgresql.insert(a)
        .from_select(list(NEW_ALIAS_COLUMNS), new)
        .on_conflict_do_nothing()
        .returning(a.c.key)
        .cte("inserted")
    )
    statement = sa.union_all(
        sa.select(*current.c, sa.false().label("created")),
        sa.select(
            *[sa.null().label(c.name) for c in columns], sa.true().label("created")
        ).select_from(inserted),
    )
    if entries:
        values = sa.select(
            *[sa.bindparam(f"e_{name}", type_=t.c[name].type) for name in NEW_ENTRY_COLUMNS]
        ).select_from(inserted)
        entry = sa.insert(t).from_select(list(NEW_ENTRY_COLUMNS), values).cte("entry")
        statement = statement.add_cte(entry)
    return statement


class Upsert(enum.Enum):
    """How a dialect inserts a row unless a unique key is taken."""

    RETURNING = enum.auto()
    """``ON CONFLICT DO NOTHING RETURNING pk``: a row back only when inserted."""
    ROWCOUNT = enum.auto()
    """``ON CONFLICT DO NOTHING``, then the row count and last row id (SQLite before 3.35)."""
    INSERT_ID = enum.auto()
    """A no-op ``ON DUPLICATE KEY UPDATE``: the insert id is 0 when nothing was inserted."""
    SAVEPOINT = enum.auto()
    """A plain ``INSERT`` in a savepoint: an integrity error means "taken"."""


class InsertOnce:
    """Insert a row unless a unique key is taken; return its new primary key, or ``None``.

    PostgreSQL and SQLite: ``INSERT … ON CONFLICT DO NOTHING RETURNING pk``.
    MariaDB/MySQL: ``INSERT … ON DUPLICATE KEY UPDATE pk = pk``. Other
    databases: a plain ``INSERT`` in a savepoint.
    """

    def __init__(self, table: Table, pk: sa.Column[Any], dialect: str) -> None:
        self._statement: Executable
        self._fallback: Executable | None = None
        if dialect == "postgresql":
            self._how = Upsert.RETURNING
            self._statement = postgresql.insert(table).on_conflict_do_nothing().returning(pk)
        elif dialect == "sqlite":
            self._how = Upsert.RETURNING
            ignore = sqlite.insert(table).on_conflict_do_nothing()
            self._statement = ignore.returning(pk)
            self._fallback = ignore
        elif dialect in MYSQL_DIALECTS:
            self._how = Upsert.INSERT_ID
            self._statement = mysql.insert(table).on_duplicate_key_update({pk.name: pk})
        else:
            self._how = Upsert.SAVEPOINT
            self._statement = sa.insert(table)

    @property
    def statement(self) -> ClauseElement:
        """What it runs first (``INSERT … ON CONFLICT DO NOTHING RETURNING pk`` on SQLite)."""
        return cast(ClauseElement, self._statement)

    def __call__(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        """Insert ``values``; return the new primary key, or ``None`` if a key was taken."""
        how = self._how
        if self._fallback is not None and not conn.dialect.insert_returning:  # old SQLite
            how = Upsert.ROWCOUNT
        if how is Upsert.RETURNING:
            found: int | None = conn.execute(self._statement, values).scalar()
            return found
        if how is Upsert.ROWCOUNT and self._fallback is not None:
            result = conn.execute(self._fallback, values)
            return result.lastrowid if result.rowcount == 1 else None
        if how is Upsert.INSERT_ID:
            return conn.execute(self._statement, values).lastrowid or None
        try:
            with conn.begin_nested():
                result = conn.execute(self._statement, values)
        except sa_exc.IntegrityError:
            return None
        inserted = result.inserted_primary_key
        return int(inserted[0]) if inserted else None


# -- rows ---------------------------------------------------------------------------


def entry_values(entry: TimelineEntry) -> dict[str, Any]:
    """The timeline table's values of a new entry."""
    return {
        "conversation": entry.conversation,
        "store": entry.store,
        "at": entry.at,
        "kind": entry.kind.value,
        "name": entry.name,
        "data": entry.data,
        "dedup_key": entry.dedup_key,
    }


def alias_values(alias: Alias) -> dict[str, Any]:
    """The alias table's values of a new alias record (:data:`NEW_ALIAS_COLUMNS`)."""
    return {
        "key": alias.key,
        "slot": alias.slot,
        "address": alias.address,
        "real_address": alias.real_address,
        "conversation": alias.conversation,
        "store": alias.store,
        "role": alias.role.value,
        "strategy": alias.strategy,
        "created_at": alias.created_at,
        "expires_at": alias.expires_at,
        "status": alias.status.value,
        "ends_at": alias.ends_at,
        "revoked_at": alias.revoked_at,
        "owner": alias.owner,
    }


def alias_from_row(row: Sequence[Any]) -> Alias:
    """The alias record of an alias row that is not purged."""
    return Alias(
        address=row[2],
        real_address=row[3],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        strategy=row[7],
        created_at=row[8],
        expires_at=row[9],
        status=AliasStatus(row[10]),
        ends_at=row[11],
        revoked_at=row[12],
        key=row[0],
        slot=row[1],
        owner=row[16],
    )


def record_from_row(row: Sequence[Any]) -> Alias | Tombstone:
    """The alias record of an alias row, or its tombstone if purged."""
    if row[13] is None:
        return alias_from_row(row)
    return Tombstone(
        key=row[0],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        expired_at=row[14],
        reason=ExpiryReason(row[15]),
        purged_at=row[13],
        owner=row[16],
    )


#: What a message entry's data, as the tracker writes it (compact JSON), starts with.
_ID_START: Final = '{"messageId":'
#: What a sealed message entry's data ends with (the tracker's seal mark comes last).
_SEALED_END: Final = ',"sealed":true}'
_JSON: Final = json.JSONDecoder()
_KINDS: Final = {kind.value: kind for kind in EntryKind}
#: The keys of a message entry's data the rules read.
RULE_KEYS: Final = ("messageId", "sealed")


def rule_data(text: str) -> dict[str, Any]:
    """A message entry's data (JSON text) reduced to its :data:`RULE_KEYS`.

    As the tracker writes it (``messageId`` first, ``sealed`` last, each key
    once), only the id is decoded; any other text is decoded whole and reduced.
    """
    if text.startswith(_ID_START) and text.count('"messageId"') == 1:
        sealed = '"sealed"' in text
        if not sealed or (text.endswith(_SEALED_END) and text.count('"sealed"') == 1):
            try:
                value, _ = _JSON.raw_decode(text, len(_ID_START))
            except ValueError:
                pass  # not JSON: decoded whole below, which raises
            else:
                return {"messageId": value, "sealed": True} if sealed else {"messageId": value}
    data = json.loads(text)
    return {key: data[key] for key in RULE_KEYS if key in data}


def rule_entry_from_row(row: Sequence[Any]) -> TimelineEntry:
    """The timeline entry of a row of the rules' read: a message's data reduced (rule_data)."""
    conversation, kind_value, name, at, text, dedup_key, seq, store = row
    kind = _KINDS.get(kind_value) or EntryKind(kind_value)
    data = rule_data(text) if kind is EntryKind.MESSAGE else json.loads(text)
    return TimelineEntry(conversation, kind, name, at, data, dedup_key, seq, store=store)


def entry_from_row(row: Sequence[Any]) -> TimelineEntry:
    """The timeline entry of a timeline row."""
    return TimelineEntry(
        conversation=row[0],
        kind=EntryKind(row[1]),
        name=row[2],
        at=row[3],
        data=row[4],
        dedup_key=row[5],
        seq=row[6],
        store=row[7],
    )
