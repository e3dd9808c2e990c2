"""Choosing a storage by URL: ``memory://``, ``sqlite:///ct.db``, ``postgresql://…``, yours.

:func:`storage_from_url` looks the URL's scheme up in a registry. The built-in
schemes are ``memory`` (:class:`~ct_alias.storage.MemoryStorage`) and the SQL
ones (:class:`~ct_alias.storage.sql.SQLStorage`: ``sqlite``, ``postgresql``,
``postgres``, ``postgresql+psycopg``, ``mysql``, ``mysql+pymysql``,
``mariadb``, ``mariadb+pymysql``). A third-party backend adds its scheme with
:func:`register_storage_scheme`, or with an entry point in the
``ct_alias.stores`` group (loaded the first time an unknown scheme is asked for)::

    [project.entry-points."ct_alias.stores"]
    redis = "my_package.store:from_url"

Nothing here imports SQLAlchemy until a SQL URL is opened.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard

from .._deprecated import renamed
from .._registry import Registry
from ..errors import ConfigurationError
from .base import Storage
from .memory import MemoryStorage

__all__ = [
    "ENTRY_POINT_GROUP",
    "SchemaStorage",
    "StorageFactory",
    "available_schemes",
    "register_storage_scheme",
    "storage_from_url",
]

#: The entry point group scanned for third-party storage schemes.
ENTRY_POINT_GROUP = "ct_alias.stores"


class SchemaStorage(Storage, Protocol):
    """What :func:`storage_from_url` returns: a storage that can create its schema.

    ``upgrade()`` creates or migrates what the storage needs (the SQL tables)
    and returns the schema version in place; it is safe to run again. Storage
    that needs nothing returns 0 (:meth:`MemoryStorage.upgrade
    <ct_alias.storage.MemoryStorage.upgrade>`).
    """

    def upgrade(self) -> int:
        """Create or migrate the schema; return the version now in place."""
        ...


class StorageFactory(Protocol):
    """Makes a storage from a URL of the scheme it is registered for."""

    def __call__(self, url: str, /, **options: Any) -> Storage:
        """Return a new storage for ``url``; ``options`` come from :func:`storage_from_url`.

        It should do no I/O: connecting (and creating tables) happens later.
        """
        ...


def _memory(url: str, /, **options: Any) -> MemoryStorage:
    if url != "memory://" or options:
        raise ConfigurationError("the memory store's URL is exactly 'memory://', without options")
    return MemoryStorage()


def _sql(url: str, /, **options: Any) -> SchemaStorage:
    from .sql import SQLStorage  # noqa: PLC0415 - SQLAlchemy only when a SQL URL is used

    return SQLStorage(url, **options)


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


def _new_registry() -> Registry[StorageFactory]:
    builtins: dict[str, StorageFactory] = {"memory": _memory}
    builtins.update(dict.fromkeys(_SQL_SCHEMES, _sql))
    return Registry(
        kind="storage URL scheme",
        pattern=r"[a-z][a-z0-9+.-]{0,31}",
        rule="1-32 lower-case letters, digits, '+', '-' or '.', starting with a letter",
        group=ENTRY_POINT_GROUP,
        builtins=builtins,
    )


_registry = _new_registry()


def storage_from_url(url: str, **options: Any) -> SchemaStorage:
    """Make the storage a URL names, without connecting to anything yet.

    ======================================  =============================================
    URL                                     store
    ======================================  =============================================
    ``memory://``                           :class:`~ct_alias.storage.MemoryStorage`
    ``sqlite:///ct.db``, ``sqlite://``      :class:`~ct_alias.storage.sql.SQLStorage` on a
                                            SQLite file, or in memory (one database
                                            shared by all threads)
    ``postgresql://`` (``+psycopg``)        SQLStorage on PostgreSQL, with psycopg 3
    ``mysql://``, ``mariadb://``            SQLStorage on MariaDB/MySQL, with PyMySQL
    (``+pymysql``)
    anything registered                     see :func:`register_storage_scheme`
    ======================================  =============================================

    SQL stores need their tables: run ``storage.upgrade()`` (or ``ct-alias db
    upgrade``) once. Every storage it returns has ``upgrade()``
    (:class:`SchemaStorage`), so this checks under ``mypy --strict``::

        storage = storage_from_url(os.environ["CT_ALIAS_DB"])
        storage.upgrade()

    Args:
        url: the storage URL. It may hold a password: it never appears in
            error messages.
        **options: passed to the storage's factory (for SQL: ``prefix``,
            ``schema`` and engine options).

    Raises:
        ConfigurationError: not a URL, an unknown scheme (the message lists the
            known ones), or a registered factory made a storage without ``upgrade()``.
        MissingExtra: the backend needs a package that is not installed.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a storage URL is a str, not {type(url).__name__}")
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        raise ConfigurationError(
            "a storage URL looks like scheme://…, e.g. memory:// or sqlite:///ct_alias.db"
        )
    storage = _registry.get(scheme.lower())(url, **options)
    if not _has_upgrade(storage):
        raise ConfigurationError(
            f"the storage made for {scheme.lower()!r} URLs has no upgrade() method: give "
            f"{type(storage).__name__} one (it may do nothing and return 0)"
        )
    return storage


def _has_upgrade(storage: Storage) -> TypeGuard[SchemaStorage]:
    return callable(getattr(storage, "upgrade", None))


def register_storage_scheme(scheme: str, factory: StorageFactory, *, replace: bool = False) -> None:
    """Make :func:`storage_from_url` open URLs of ``scheme`` with ``factory``.

    Args:
        scheme: 1-32 lower-case letters, digits, ``+``, ``-`` or ``.``, starting with a letter.
        factory: called with the whole URL and the options given to
            :func:`storage_from_url`; returns an :class:`~ct_alias.storage.Storage`
            that also has ``upgrade()`` (:class:`SchemaStorage`).
        replace: allow replacing the factory already registered for ``scheme``.

    Raises:
        ConfigurationError: a bad scheme, a non-callable factory, or the scheme is taken.
    """
    _registry.register(scheme, factory, replace=replace)


def available_schemes() -> list[str]:
    """The URL schemes :func:`storage_from_url` knows so far, sorted."""
    return _registry.names()


#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(
    __name__,
    {
        "StoreFactory": "StorageFactory",
        "store_from_url": "storage_from_url",
        "register_store_scheme": "register_storage_scheme",
    },
    globals(),
)
