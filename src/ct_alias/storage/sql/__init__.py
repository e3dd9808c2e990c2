"""Storage on SQLAlchemy Core: SQLite, PostgreSQL, MariaDB/MySQL (the ``sql`` extra).

Create the tables once with :func:`upgrade` (or ``ct-alias db upgrade``), then
hand a :class:`SQLStorage` to the tracker::

    from ct_alias.storage.sql import SQLStorage

    store = SQLStorage("postgresql+psycopg://app@db.example/shop")
    store.upgrade()  # idempotent: creates or migrates the tables

The constructor does no I/O; connections are opened on first use, from a
pool without pre-ping: on PostgreSQL and MariaDB/MySQL they stay in
autocommit mode, a connection the server closed is replaced at checkout
without a round trip (the direct path's reads and one-statement masks skip
that check on their first attempt: they are sent again on a checked
connection if the first meets a closed one), and a call that meets a lost
connection is run again
when that is safe (a read, an idempotent write, or a transaction whose
``COMMIT`` was never sent). On PostgreSQL a mask is one statement in the
common case. Every driver error surfaces as
:class:`~ct_alias.errors.StorageError` with the driver's exception as its
``cause`` (and ``__cause__``); a transaction that fails leaves nothing behind.

How get-or-create stays atomic and race-free on every database: the alias
table's ``key`` and ``slot`` are unique; a new alias is inserted with the
dialect's insert-or-ignore (``ON CONFLICT DO NOTHING`` on PostgreSQL and
SQLite, a no-op ``ON DUPLICATE KEY UPDATE`` on MariaDB/MySQL) and the winner is
read back; an unusable alias leaves its slot by a compare-and-set ``UPDATE``
(on its key *and* slot) in the same transaction. SQLite writers take the
write lock up front (``BEGIN IMMEDIATE``) and wait for it (``busy_timeout``),
file databases use WAL, so many processes can share one file. Deadlocks and
serialisation failures are retried a few times.
"""

from __future__ import annotations

from ...errors import MissingExtra

try:
    import sqlalchemy  # noqa: F401 - fail early, with the extra to install
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise MissingExtra("sql", "sqlalchemy", "the SQL store") from _exc

from ..._deprecated import renamed
from .migrations import SCHEMA_VERSION
from .schema import SQLTables, build_metadata
from .store import SQLStorage, upgrade

__all__ = [
    "SCHEMA_VERSION",
    "SQLStorage",
    "SQLTables",
    "build_metadata",
    "metadata",
    "upgrade",
]

#: ct_alias's tables with the default prefix, for a host's Alembic ``target_metadata``.
metadata = build_metadata()

#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(__name__, {"SQLStore": "SQLStorage"}, globals())
