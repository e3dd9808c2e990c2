"""Storage backends for aliases and timelines.

:class:`Storage` is the protocol; :class:`MemoryStorage` keeps everything in
memory; ``SQLStorage`` (the ``sql`` extra) keeps it in SQLite, PostgreSQL or
MariaDB/MySQL. :func:`storage_from_url` picks one by URL.

``SQLStorage``, ``upgrade``, ``metadata`` and ``build_metadata`` are loaded on
first use, so importing this package never imports SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._deprecated import renamed
from .base import (
    AliasChange,
    EntryCount,
    Erasure,
    ErasureStorage,
    MessageScan,
    ParticipantsAppend,
    PolicyStorage,
    RuleScan,
    Sealed,
    SlotLookup,
    Storage,
    Tombstone,
    stopped_working,
)
from .memory import MemoryStorage

if TYPE_CHECKING:
    from .registry import available_schemes as available_schemes
    from .registry import register_storage_scheme as register_storage_scheme
    from .registry import storage_from_url as storage_from_url
    from .sql import SQLStorage as SQLStorage
    from .sql import build_metadata as build_metadata
    from .sql import metadata as metadata
    from .sql import upgrade as upgrade

__all__ = [
    "AliasChange",
    "EntryCount",
    "Erasure",
    "ErasureStorage",
    "MemoryStorage",
    "MessageScan",
    "ParticipantsAppend",
    "PolicyStorage",
    "RuleScan",
    "Sealed",
    "SlotLookup",
    "Storage",
    "Tombstone",
    "stopped_working",
]

_LAZY = {
    "SQLStorage": "sql",
    "build_metadata": "sql",
    "metadata": "sql",
    "upgrade": "sql",
    "available_schemes": "registry",
    "register_storage_scheme": "registry",
    "storage_from_url": "registry",
}

#: Old names, deprecated (they warn); removed in the next release.
_RENAMED = {
    "AliasStore": "Storage",
    "MemoryStore": "MemoryStorage",
    "SQLStore": "SQLStorage",
    "register_store_scheme": "register_storage_scheme",
    "store_from_url": "storage_from_url",
}


def __getattr__(name: str) -> Any:
    """Load the SQL store (and the URL registry) on first use.

    Raises:
        MissingExtra: ``SQLStorage`` & co. were asked for without SQLAlchemy installed.
    """
    if name in _RENAMED:
        return renamed(__name__, _RENAMED, globals(), stacklevel=3)(name)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415 - lazy on purpose

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
