"""The SQL schema of :class:`~ct_alias.storage.sql.SQLStorage`: column types and tables.

Four tables, named with a configurable prefix (``ct_alias_`` by default):

``<prefix>aliases``
    One row per alias ever issued. ``key`` (the blind index of the alias
    address) is unique and never reused, ``slot`` (the blind index of the
    store, conversation, role and real address) is unique while the alias is
    the current one of its slot. A purged alias keeps its row, without its
    addresses, as a tombstone. ``owner`` (the blind index of the real address
    alone, schema version 4) is indexed, so that erasure finds every alias of
    one person; a purge keeps it, an erasure removes it.
``<prefix>timeline``
    The conversations' entries, each under its ``(store, conversation)``;
    ``seq`` orders entries with equal times, and ``(store, conversation,
    dedup_key)`` is unique so a message is recorded once.
``<prefix>policies``
    One row per store with its own policy: the JSON object of
    :meth:`Policy.to_data <ct_alias.policy.Policy.to_data>` (schema version 3).
``<prefix>schema_version``
    One row per migration step applied by :func:`ct_alias.storage.sql.upgrade`.

Datetimes are stored as naive UTC with microseconds where the database has no
time zone type (SQLite, MariaDB/MySQL) and read back timezone-aware UTC
everywhere: :class:`UTCDateTime` is the one place that converts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from attrs import frozen
from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.types import TypeEngine

from ...errors import ConfigurationError
from ...vocabulary import MAX_CONVERSATION, MAX_EVENT, MAX_STORE, MYSQL_DIALECTS

__all__ = [
    "DEFAULT_PREFIX",
    "JSONText",
    "SQLTables",
    "UTCDateTime",
    "build_metadata",
    "build_tables",
]

#: The table name prefix used unless a store is given another one.
DEFAULT_PREFIX = "ct_alias_"

_PREFIX = re.compile(r"(?:[a-z_][a-z0-9_]{0,23})?")
_MYSQL = MYSQL_DIALECTS

# Lengths, from the RFCs and the tracker's limits.
_KEY = 32  # blind indexes: 32 hex characters
_ADDRESS = 512  # an address is at most 254 characters (RFC 5321); room for a sealed form
_CONVERSATION = MAX_CONVERSATION
_STORE = MAX_STORE
_ROLE = 16
_STRATEGY = 32
_STATUS = 16
_KIND = 16
_NAME = MAX_EVENT
_DEDUP = 80


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime column that always reads back timezone-aware UTC.

    Values are written as naive UTC with microseconds (``DATETIME(6)`` on
    MariaDB/MySQL, text on SQLite) or as ``TIMESTAMP WITH TIME ZONE`` on
    PostgreSQL. A naive datetime is refused: it has no defined instant.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Pick the column type with microseconds (and a time zone) for ``dialect``."""
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive where the database has no time zones)."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("a naive datetime cannot be stored: give it a time zone (UTC)")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime."""
        del dialect
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONText(TypeDecorator[Mapping[str, Any]]):
    """A JSON object kept as text (``MEDIUMTEXT`` on MariaDB/MySQL, whose ``TEXT`` is 64 KB).

    Text rather than a native JSON type: the same bytes on every database,
    no reordering of keys, and nothing for a host's own tooling to learn.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use ``MEDIUMTEXT`` on MariaDB/MySQL, ``TEXT`` elsewhere."""
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Mapping[str, Any] | None, dialect: Dialect) -> str | None:
        """Serialise ``value`` as compact JSON, keeping non-ASCII text as is."""
        del dialect
        if value is None:
            return None
        return _ENCODER.encode(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Mapping[str, Any] | None:
        """Parse the stored JSON text."""
        del dialect
        if value is None:
            return None
        parsed: Mapping[str, Any] = json.loads(value)
        return parsed


def _plain(value: object) -> object:
    """Let :func:`json.dumps` accept any mapping, not only dicts; refuse anything else."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a timeline entry's data must be JSON-compatible, not {type(value).__name__}")


#: Compact JSON, non-ASCII text kept as is (one encoder: it keeps no state between calls).
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain)


def _hex_key() -> TypeEngine[str]:
    """``CHAR(32)`` for blind indexes, compared byte by byte (ASCII, binary collation)."""
    return (
        CHAR(_KEY)
        .with_variant(mysql.CHAR(_KEY, charset="ascii", collation="ascii_bin"), *_MYSQL)
        .with_variant(postgresql.CHAR(_KEY, collation="C"), "postgresql")
    )


def _serial() -> TypeEngine[int]:
    """A 64-bit auto-incrementing key (``INTEGER`` on SQLite: only that type autoincrements)."""
    return BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


@frozen
class SQLTables:
    """The tables of one store, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects.

    Attributes:
        metadata: the :class:`~sqlalchemy.MetaData` that holds them.
        aliases: the alias records (and tombstones).
        timeline: the timeline entries.
        versions: the applied migration steps.
        policies: the stores' policies.
    """

    metadata: MetaData
    aliases: Table
    timeline: Table
    versions: Table
    policies: Table


def build_metadata(prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> MetaData:
    """A fresh :class:`~sqlalchemy.MetaData` holding ct_alias's tables.

    Include it in a host application's Alembic ``target_metadata`` to manage
    our tables with the host's migrations (or let :func:`~ct_alias.storage.sql.upgrade`
    manage them).

    Args:
        prefix: prepended to every table, index and constraint name: up to 24
            lower-case letters, digits and ``_``, not starting with a digit.
        schema: the database schema (PostgreSQL) or database (MariaDB/MySQL)
            holding the tables; ``None`` for the connection's default.

    Raises:
        ConfigurationError: the prefix is not acceptable.
    """
    return build_tables(prefix, schema).metadata


def build_tables(prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> SQLTables:
    """Like :func:`build_metadata`, returning the tables themselves.

    Raises:
        ConfigurationError: the prefix is not acceptable.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            "a table prefix is up to 24 lower-case letters, digits or '_', "
            f"not starting with a digit: {prefix!r}"
        )
    metadata = MetaData(schema=schema)
    table_options: dict[str, Any] = {
        "mysql_engine": "InnoDB",
        "mysql_charset": "utf8mb4",
        "mysql_collate": "utf8mb4_bin",
        "mariadb_engine": "InnoDB",
        "mariadb_charset": "utf8mb4",
        "mariadb_collate": "utf8mb4_bin",
    }
    aliases = Table(
        f"{prefix}aliases",
        metadata,
        Column("id", _serial(), primary_key=True, autoincrement=True),
        Column("key", _hex_key(), nullable=False),
        Column("slot", _hex_key(), nullable=True),
        Column("address", String(_ADDRESS), nullable=True),
        Column("real_address", String(_ADDRESS), nullable=True),
        Column("conversation", String(_CONVERSATION), nullable=False),
        Column("store", String(_STORE), nullable=False),
        Column("role", String(_ROLE), nullable=False),
        Column("strategy", String(_STRATEGY), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
        Column("status", String(_STATUS), nullable=False),
        Column("ends_at", UTCDateTime(), nullable=True),
        Column("revoked_at", UTCDateTime(), nullable=True),
        Column("purged_at", UTCDateTime(), nullable=True),
        Column("expired_at", UTCDateTime(), nullable=True),
        Column("expiry_reason", String(_STATUS), nullable=True),
        Column("owner", _hex_key(), nullable=True),
        UniqueConstraint("key", name=f"{prefix}aliases_key_uq"),
        UniqueConstraint("slot", name=f"{prefix}aliases_slot_uq"),
        Index(f"{prefix}aliases_place_ix", "store", "conversation"),
        Index(f"{prefix}aliases_expires_at_ix", "expires_at"),
        Index(f"{prefix}aliases_owner_ix", "owner"),
        **table_options,
    )
    timeline = Table(
        f"{prefix}timeline",
        metadata,
        Column("seq", _serial(), primary_key=True, autoincrement=True),
        Column("conversation", String(_CONVERSATION), nullable=False),
        Column("store", String(_STORE), nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("kind", String(_KIND), nullable=False),
        Column("name", String(_NAME), nullable=False),
        Column("data", JSONText(), nullable=False),
        Column("dedup_key", String(_DEDUP), nullable=True),
        UniqueConstraint("store", "conversation", "dedup_key", name=f"{prefix}timeline_dedup_uq"),
        Index(f"{prefix}timeline_order_ix", "store", "conversation", "at", "seq"),
        **table_options,
    )
    versions = Table(
        f"{prefix}schema_version",
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", UTCDateTime(), nullable=False),
        Column("description", String(255), nullable=False),
        **table_options,
    )
    policies = Table(
        f"{prefix}policies",
        metadata,
        Column("store", String(_STORE), primary_key=True, autoincrement=False),
        Column("data", JSONText(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        **table_options,
    )
    return SQLTables(
        metadata=metadata,
        aliases=aliases,
        timeline=timeline,
        versions=versions,
        policies=policies,
    )
