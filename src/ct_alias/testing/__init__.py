"""Testing helpers shipped with ct_alias, for our tests and yours.

**Helpers** (no pytest needed): :func:`make_tracker` builds a tracker with
fresh random secrets and a frozen clock; :class:`CountingStorage` counts the
storage calls a piece of code makes (to prove a refusal touched no storage);
:class:`FailingStorage` fails chosen operations like a lost database;
:func:`race` runs a function in many threads released together;
:class:`RoundTrips` (needs the ``sql`` extra) counts the round trips a SQL
storage's engine makes to its server.

**The storage contract** (needs pytest): a storage backend author subclasses
:class:`StorageContract` in their own test suite and provides a ``storage``
fixture returning a fresh, empty storage; pytest then runs the whole
behavioural suite against it::

    import pytest
    from ct_alias.testing import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self):
            storage = MyStorage(...)
            yield storage
            storage.drop_everything()

Our own memory, SQLite, PostgreSQL and MariaDB backends run this same suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._helpers import T0, CountingStorage, FailingStorage, make_tracker, race

if TYPE_CHECKING:
    from ._contract import StorageContract as StorageContract
    from ._contract import make_alias as make_alias
    from ._contract import make_entry as make_entry
    from ._round_trips import RoundTrips as RoundTrips

__all__ = [
    "T0",
    "CountingStorage",
    "FailingStorage",
    "RoundTrips",
    "StorageContract",
    "make_alias",
    "make_entry",
    "make_tracker",
    "race",
]

_CONTRACT = frozenset({"StorageContract", "make_alias", "make_entry"})
_LAZY = _CONTRACT | {"RoundTrips"}


def __getattr__(name: str) -> Any:
    """Load the storage contract (and pytest), or the round-trip counter, on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "RoundTrips":
        from . import _round_trips  # noqa: PLC0415 - SQLAlchemy only when counting

        value: Any = _round_trips.RoundTrips
    else:
        from . import _contract  # noqa: PLC0415 - pytest only when the contract is used

        value = getattr(_contract, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
