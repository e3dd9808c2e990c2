"""An example storage backend: the Storage protocol on the standard library's sqlite3.

This file is the example of the "Writing your own backend" section of the
storage guide. It is complete and it passes ``ct_alias.testing.StorageContract``
(see ``tests/test_docs_examples.py``), but it is an example: ct_alias's own
``SQLStorage`` is the supported way to keep aliases in SQLite.

It shows what a backend has to get right:

* records are keyed by the blind indexes the tracker computes (``key``,
  ``slot``); addresses are opaque text, never looked up;
* get-or-create is atomic: one lock and one transaction around the slot
  check, the retirement of an unusable alias and the insert;
* every write stores its timeline entries in the same transaction;
* a conversation is keyed by (store, conversation): two stores may number
  their orders alike;
* timeline entries are unique per (store, conversation, dedup key) and
  ordered by (time, sequence number);
* datetimes go in and come out timezone-aware UTC, microseconds kept;
* purging keeps a tombstone: the key stays taken, the addresses are gone.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ct_alias import Alias, AliasStatus, ExpiryReason, Role, Tombstone
from ct_alias.errors import AliasCollision
from ct_alias.storage import AliasChange, Sealed, stopped_working
from ct_alias.timeline import EntryKind, TimelineEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (
    n             INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
    key           TEXT NOT NULL UNIQUE,
    slot          TEXT UNIQUE,                        -- NULL once out of its slot
    address       TEXT,                               -- NULL once purged
    real_address  TEXT,                               -- NULL once purged
    conversation  TEXT NOT NULL,
    store         TEXT NOT NULL,
    role          TEXT NOT NULL,
    strategy      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,                   -- microseconds since the epoch
    expires_at    INTEGER NOT NULL,
    status        TEXT NOT NULL,
    ends_at       INTEGER,
    revoked_at    INTEGER,
    purged_at     INTEGER,                            -- set: this row is a tombstone
    expired_at    INTEGER,
    expiry_reason TEXT
);
CREATE INDEX IF NOT EXISTS aliases_place ON aliases (store, conversation);
CREATE TABLE IF NOT EXISTS entries (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    store         TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    data          TEXT NOT NULL,
    dedup_key     TEXT,
    UNIQUE (store, conversation, dedup_key)
);
CREATE INDEX IF NOT EXISTS entries_order ON entries (store, conversation, at, seq);
"""

_ALIAS_COLUMNS = (
    "key, slot, address, real_address, conversation, store, role, strategy, "
    "created_at, expires_at, status, ends_at, revoked_at, purged_at, expired_at, expiry_reason"
)
_SELECT_ALIAS = (
    "SELECT key, slot, address, real_address, conversation, store, role, strategy, created_at, "
    "expires_at, status, ends_at, revoked_at, purged_at, expired_at, expiry_reason FROM aliases"
)
_SELECT_ENTRY = "SELECT conversation, kind, name, at, data, dedup_key, seq, store FROM entries"


def _micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: exact and sortable."""
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _optional_micros(moment: datetime | None) -> int | None:
    return None if moment is None else _micros(moment)


def _optional_moment(micros: int | None) -> datetime | None:
    return None if micros is None else _moment(micros)


class SQLite3Store:
    """An alias store in one SQLite file, on the standard library's sqlite3 module.

    Thread-safe: one connection, used under one lock. Every write is one
    ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock first, so
    several processes may share the file too. The constructor does no I/O;
    :meth:`create_schema` creates the tables.

    Args:
        path: the database file.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<SQLite3Store {self._path}>"

    @property
    def _conn(self) -> sqlite3.Connection:
        # Called with the lock held.
        if self._db is None:
            # isolation_level=None: no implicit transactions, ours are explicit.
            self._db = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
        return self._db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block succeeds, else rolled back."""
        with self._lock:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def create_schema(self) -> None:
        """Create the tables (idempotent)."""
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- aliases ------------------------------------------------------------------

    def get_or_create(
        self, candidate: Alias, *, now: datetime, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[Alias, bool]:
        """Return the usable alias in ``candidate.slot``, or store ``candidate``."""
        if candidate.slot is None:
            raise ValueError("a candidate alias needs a slot")
        with self._writing() as db:  # all of it, or nothing
            row = db.execute(_SELECT_ALIAS + " WHERE slot = ?", (candidate.slot,)).fetchone()
            if row is not None:
                current = _alias(row)
                if current.usable_at(now):
                    return current, False
                # Retire the unusable alias from the slot; its record stays.
                db.execute("UPDATE aliases SET slot = NULL WHERE key = ?", (current.key,))
            if db.execute("SELECT 1 FROM aliases WHERE key = ?", (candidate.key,)).fetchone():
                raise AliasCollision()  # the transaction rolls back: nothing was written
            db.execute(
                "INSERT INTO aliases (" + _ALIAS_COLUMNS + ") "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                (
                    candidate.key,
                    candidate.slot,
                    candidate.address,
                    candidate.real_address,
                    candidate.conversation,
                    candidate.store,
                    candidate.role.value,
                    candidate.strategy,
                    _micros(candidate.created_at),
                    _micros(candidate.expires_at),
                    candidate.status.value,
                    _optional_micros(candidate.ends_at),
                    _optional_micros(candidate.revoked_at),
                ),
            )
            for entry in entries:
                _append(db, entry)
            return candidate, True

    def get(self, key: str) -> Alias | Tombstone | None:
        """The alias, or the tombstone of the purged alias, stored under ``key``."""
        with self._lock:
            row = self._conn.execute(_SELECT_ALIAS + " WHERE key = ?", (key,)).fetchone()
        return None if row is None else _record(row)

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        """Every alias of ``store``'s ``conversation`` that is not purged, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                _SELECT_ALIAS + " WHERE store = ? AND conversation = ? AND purged_at IS NULL "
                "ORDER BY created_at, n",
                (store, conversation),
            ).fetchall()
        return [_alias(row) for row in rows]

    def update(
        self, changes: Sequence[AliasChange], *, entries: Sequence[TimelineEntry] = ()
    ) -> tuple[list[Alias], list[TimelineEntry]]:
        """Apply lifecycle changes and append ``entries``, all or nothing."""
        with self._writing() as db:
            changed = []
            for change in changes:
                cursor = db.execute(
                    "UPDATE aliases SET status = ?, ends_at = ?, revoked_at = ? "
                    "WHERE key = ? AND purged_at IS NULL",
                    (
                        change.status.value,
                        _optional_micros(change.ends_at),
                        _optional_micros(change.revoked_at),
                        change.key,
                    ),
                )
                if cursor.rowcount:  # unknown and purged keys are skipped
                    row = db.execute(_SELECT_ALIAS + " WHERE key = ?", (change.key,)).fetchone()
                    changed.append(_alias(row))
            stored = [_append(db, entry)[0] for entry in entries]
            return changed, stored

    def purge(self, *, before: datetime, now: datetime) -> int:
        """Turn aliases that stopped working before ``before`` into tombstones."""
        limit = _micros(before)
        with self._writing() as db:
            # A cheap pre-selection in SQL; stopped_working() has the last word.
            rows = db.execute(
                _SELECT_ALIAS + " WHERE purged_at IS NULL "
                "AND (expires_at < ? OR ends_at < ? OR revoked_at < ? OR status = ?)",
                (limit, limit, limit, AliasStatus.REVOKED.value),
            ).fetchall()
            purged = 0
            for row in rows:
                when, reason = stopped_working(_alias(row))
                if when >= before:
                    continue
                db.execute(
                    "UPDATE aliases SET address = NULL, real_address = NULL, slot = NULL, "
                    "purged_at = ?, expired_at = ?, expiry_reason = ? WHERE key = ?",
                    (_micros(now), _micros(when), reason.value, row[0]),
                )
                purged += 1
            return purged

    def scan(self, *, after: str | None, limit: int) -> list[Alias]:
        """Up to ``limit`` aliases (not purged) with a key greater than ``after``, by key."""
        with self._lock:
            rows = self._conn.execute(
                _SELECT_ALIAS + " WHERE purged_at IS NULL AND key > ? ORDER BY key LIMIT ?",
                ("" if after is None else after, limit),
            ).fetchall()
        return [_alias(row) for row in rows]

    def reseal(self, records: Sequence[Sealed]) -> int:
        """Replace the stored address forms of some aliases (address key rotation)."""
        done = 0
        with self._writing() as db:
            for sealed in records:
                done += db.execute(
                    "UPDATE aliases SET address = ?, real_address = ? "
                    "WHERE key = ? AND purged_at IS NULL",
                    (sealed.address, sealed.real_address, sealed.key),
                ).rowcount
        return done

    # -- timeline ---------------------------------------------------------------

    def append(self, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
        """Append one entry, unless its store's conversation already has its ``dedup_key``."""
        with self._writing() as db:
            return _append(db, entry)

    def entries(
        self,
        conversation: str,
        *,
        store: str,
        after: tuple[datetime, int] | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """A conversation's entries by (time, sequence), after a position, at most ``limit``."""
        where = " WHERE store = ? AND conversation = ?"
        params: list[object] = [store, conversation]
        if after is not None:
            where += " AND (at > ? OR (at = ? AND seq > ?))"
            params += [_micros(after[0]), _micros(after[0]), after[1]]
        params.append(-1 if limit is None else limit)  # LIMIT -1: no limit
        with self._lock:
            rows = self._conn.execute(
                _SELECT_ENTRY + where + " ORDER BY at, seq LIMIT ?", params
            ).fetchall()
        return [_entry(row) for row in rows]


def _append(db: sqlite3.Connection, entry: TimelineEntry) -> tuple[TimelineEntry, bool]:
    """Append ``entry`` inside the caller's transaction; a duplicate returns the first one."""
    if entry.dedup_key is not None:
        row = db.execute(
            _SELECT_ENTRY + " WHERE store = ? AND conversation = ? AND dedup_key = ?",
            (entry.store, entry.conversation, entry.dedup_key),
        ).fetchone()
        if row is not None:
            return _entry(row), False
    cursor = db.execute(
        "INSERT INTO entries (store, conversation, at, kind, name, data, dedup_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry.store,
            entry.conversation,
            _micros(entry.at),
            entry.kind.value,
            entry.name,
            json.dumps(dict(entry.data), ensure_ascii=False),
            entry.dedup_key,
        ),
    )
    stored = TimelineEntry(
        entry.conversation,
        entry.kind,
        entry.name,
        entry.at,
        entry.data,
        entry.dedup_key,
        seq=cursor.lastrowid,
        store=entry.store,
    )
    return stored, True


def _alias(row: tuple[Any, ...]) -> Alias:
    return Alias(
        address=row[2],
        real_address=row[3],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        strategy=row[7],
        created_at=_moment(row[8]),
        expires_at=_moment(row[9]),
        status=AliasStatus(row[10]),
        ends_at=_optional_moment(row[11]),
        revoked_at=_optional_moment(row[12]),
        key=row[0],
        slot=row[1],
    )


def _record(row: tuple[Any, ...]) -> Alias | Tombstone:
    if row[13] is None:
        return _alias(row)
    return Tombstone(
        key=row[0],
        conversation=row[4],
        store=row[5],
        role=Role(row[6]),
        expired_at=_moment(row[14]),
        reason=ExpiryReason(row[15]),
        purged_at=_moment(row[13]),
    )


def _entry(row: tuple[Any, ...]) -> TimelineEntry:
    conversation, kind, name, at, data, dedup_key, seq, store = row
    return TimelineEntry(
        conversation,
        EntryKind(kind),
        name,
        _moment(at),
        json.loads(data),
        dedup_key,
        seq,
        store=store,
    )
