"""Choosing a store by URL: ``memory://``, ``sqlite:///ct.db``, ``postgresql://…``, yours.

:func:`store_from_url` looks the URL's scheme up in a registry. The built-in
schemes are ``memory`` (:class:`~ct_alias.storage.MemoryStore`) and the SQL
ones (:class:`~ct_alias.storage.sql.SQLStore`: ``sqlite``, ``postgresql``,
``postgres``, ``postgresql+psycopg``, ``mysql``, ``mysql+pymysql``,
``mariadb``, ``mariadb+pymysql``). A third-party backend adds its scheme with
:func:`register_store_scheme`, or with an entry point in the
``ct_alias.stores`` group (loaded the first time an unknown scheme is asked for)::

    [project.entry-points."ct_alias.stores"]
    redis = "my_package.store:from_url"

Nothing here imports SQLAlchemy until a SQL URL is opened.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._registry import Registry
from ..errors import ConfigurationError
from .base import AliasStore
from .memory import MemoryStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "StoreFactory",
    "available_schemes",
    "register_store_scheme",
    "store_from_url",
]

#: The entry point group scanned for third-party store schemes.
ENTRY_POINT_GROUP = "ct_alias.stores"


class StoreFactory(Protocol):
    """Makes a store from a URL of the scheme it is registered for."""

    def __call__(self, url: str, /, **options: Any) -> AliasStore:
        """Return a new store for ``url``; ``options`` come from :func:`store_from_url`.

        It should do no I/O: connecting (and creating tables) happens later.
        """
        ...


def _memory(url: str, /, **options: Any) -> AliasStore:
    if url != "memory://" or options:
        raise ConfigurationError("the memory store's URL is exactly 'memory://', without options")
    return MemoryStore()


def _sql(url: str, /, **options: Any) -> AliasStore:
    from .sql import SQLStore  # noqa: PLC0415 - SQLAlchemy only when a SQL URL is used

    return SQLStore(url, **options)


_SQL_SCHEMES = (
    "sqlite",
    "sqlite+pysqlite",
    "postgresql",
    "postgresql+psycopg",
    "postgres",
    "mysql",
    "mysql+pymysql",
    "mariadb",
    "mariadb+pymysql",
)


def _new_registry() -> Registry[StoreFactory]:
    builtins: dict[str, StoreFactory] = {"memory": _memory}
    builtins.update(dict.fromkeys(_SQL_SCHEMES, _sql))
    return Registry(
        kind="store URL scheme",
        pattern=r"[a-z][a-z0-9+.-]{0,31}",
        rule="1-32 lower-case letters, digits, '+', '-' or '.', starting with a letter",
        group=ENTRY_POINT_GROUP,
        builtins=builtins,
    )


_registry = _new_registry()


def store_from_url(url: str, **options: Any) -> AliasStore:
    """Make the store a URL names, without connecting to anything yet.

    ======================================  =============================================
    URL                                     store
    ======================================  =============================================
    ``memory://``                           :class:`~ct_alias.storage.MemoryStore`
    ``sqlite:///ct.db``, ``sqlite://``      :class:`~ct_alias.storage.sql.SQLStore` on a
                                            SQLite file, or in memory (one database
                                            shared by all threads)
    ``postgresql://`` (``+psycopg``)        SQLStore on PostgreSQL, with psycopg 3
    ``mysql://``, ``mariadb://``            SQLStore on MariaDB/MySQL, with PyMySQL
    (``+pymysql``)
    anything registered                     see :func:`register_store_scheme`
    ======================================  =============================================

    SQL stores need their tables: run ``store.upgrade()`` (or ``ct-alias db
    upgrade``) once.

    Args:
        url: the storage URL. It may hold a password: it never appears in
            error messages.
        **options: passed to the store's factory (for SQL: ``prefix``,
            ``schema`` and engine options).

    Raises:
        ConfigurationError: not a URL, or an unknown scheme (the message lists the known ones).
        MissingExtra: the backend needs a package that is not installed.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL is a str, not {type(url).__name__}")
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        raise ConfigurationError(
            "a store URL looks like scheme://…, e.g. memory:// or sqlite:///ct_alias.db"
        )
    return _registry.get(scheme.lower())(url, **options)


def register_store_scheme(scheme: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make :func:`store_from_url` open URLs of ``scheme`` with ``factory``.

    Args:
        scheme: 1-32 lower-case letters, digits, ``+``, ``-`` or ``.``, starting with a letter.
        factory: called with the whole URL and the options given to
            :func:`store_from_url`; returns an :class:`~ct_alias.storage.AliasStore`.
        replace: allow replacing the factory already registered for ``scheme``.

    Raises:
        ConfigurationError: a bad scheme, a non-callable factory, or the scheme is taken.
    """
    _registry.register(scheme, factory, replace=replace)


def available_schemes() -> list[str]:
    """The URL schemes :func:`store_from_url` knows so far, sorted."""
    return _registry.names()
