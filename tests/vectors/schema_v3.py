"""The tables of schema version 3, frozen: what ct_alias wrote before aliases had an owner.

A verbatim copy of ``build_tables`` as released with schema version 3 (the
column types are the ones :mod:`ct_alias.storage.sql.schema` still exports).
The migration tests create these tables on PostgreSQL and MariaDB, load
``schema_v3.json`` into them and run ``upgrade()``; on SQLite they also
upgrade ``schema_v3.sqlite``, the file that release wrote.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from ct_alias.storage.sql.schema import JSONText, UTCDateTime, _hex_key, _serial


def build_v3_tables(prefix: str, schema: str | None) -> tuple[MetaData, dict[str, Table]]:
    """The version 3 tables (aliases, timeline, policies, schema_version) in ``schema``."""
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
        Column("address", String(512), nullable=True),
        Column("real_address", String(512), nullable=True),
        Column("conversation", String(255), nullable=False),
        Column("store", String(64), nullable=False),
        Column("role", String(16), nullable=False),
        Column("strategy", String(32), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("ends_at", UTCDateTime(), nullable=True),
        Column("revoked_at", UTCDateTime(), nullable=True),
        Column("purged_at", UTCDateTime(), nullable=True),
        Column("expired_at", UTCDateTime(), nullable=True),
        Column("expiry_reason", String(16), nullable=True),
        UniqueConstraint("key", name=f"{prefix}aliases_key_uq"),
        UniqueConstraint("slot", name=f"{prefix}aliases_slot_uq"),
        Index(f"{prefix}aliases_place_ix", "store", "conversation"),
        Index(f"{prefix}aliases_expires_at_ix", "expires_at"),
        **table_options,
    )
    timeline = Table(
        f"{prefix}timeline",
        metadata,
        Column("seq", _serial(), primary_key=True, autoincrement=True),
        Column("conversation", String(255), nullable=False),
        Column("store", String(64), nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("name", String(64), nullable=False),
        Column("data", JSONText(), nullable=False),
        Column("dedup_key", String(80), nullable=True),
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
        Column("store", String(64), primary_key=True, autoincrement=False),
        Column("data", JSONText(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        **table_options,
    )
    return metadata, {
        "aliases": aliases,
        "timeline": timeline,
        "policies": policies,
        "schema_version": versions,
    }
