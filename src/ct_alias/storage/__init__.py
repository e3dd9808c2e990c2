"""Storage backends for aliases and timelines.

:class:`AliasStore` is the protocol; :class:`MemoryStore` keeps everything in
memory; ``SQLStore`` (the ``sql`` extra) keeps it in SQLite, PostgreSQL or
MariaDB/MySQL. :func:`store_from_url` picks one by URL.

``SQLStore``, ``upgrade``, ``metadata`` and ``build_metadata`` are loaded on
first use, so importing this package never imports SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AliasChange, AliasStore, Sealed, Tombstone, stopped_working
from .memory import MemoryStore

if TYPE_CHECKING:
    from .registry import available_schemes as available_schemes
    from .registry import register_store_scheme as register_store_scheme
    from .registry import store_from_url as store_from_url
    from .sql import SQLStore as SQLStore
    from .sql import build_metadata as build_metadata
    from .sql import metadata as metadata
    from .sql import upgrade as upgrade

__all__ = ["AliasChange", "AliasStore", "MemoryStore", "Sealed", "Tombstone", "stopped_working"]

_LAZY = {
    "SQLStore": "sql",
    "build_metadata": "sql",
    "metadata": "sql",
    "upgrade": "sql",
    "available_schemes": "registry",
    "register_store_scheme": "registry",
    "store_from_url": "registry",
}


def __getattr__(name: str) -> Any:
    """Load the SQL store (and the URL registry) on first use.

    Raises:
        MissingExtra: ``SQLStore`` & co. were asked for without SQLAlchemy installed.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415 - lazy on purpose

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
