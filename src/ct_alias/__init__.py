"""ct_alias: order-scoped e-mail masking with a per-order timeline.

This package exports what a host application calls. Extension points and the
less common errors live in their modules, documented there:
:mod:`ct_alias.errors` (every exception), :mod:`ct_alias.strategies`
(custom alias strategies), :mod:`ct_alias.codec`, :mod:`ct_alias.storage`
(the storage protocol, URL schemes, SQL storage), :mod:`ct_alias.relay` and
:mod:`ct_alias.server` (mail), :mod:`ct_alias.crypto` and
:mod:`ct_alias.testing`. Importing ``ct_alias`` imports neither the relay and
its mail parsing nor SQLAlchemy nor aiosmtpd.

Mask the addresses of a shop and its customers for the length of an order::

    >>> from datetime import UTC, datetime
    >>> from ct_alias import FrozenClock, MemoryStorage, Policy, Role, Tracker
    >>> tracker = Tracker(storage=MemoryStorage(), keys=["a-long-random-secret"],
    ...                   default_policy=Policy(domain="ct.example.com"),
    ...                   clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    >>> alias = tracker.mask("Maria@Example.com", conversation="order-1", role=Role.CUSTOMER)
    >>> tracker.unmask(alias.address).real_address
    'Maria@example.com'
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._deprecated import renamed
from .aliases import Alias, AliasStatus, Role
from .clock import Clock, FrozenClock, SystemClock
from .errors import (
    ConfigurationError,
    CtAliasError,
    ExpiredAlias,
    ForgedAlias,
    InvalidAddress,
    InvalidArgument,
    MalformedAlias,
    RevokedAlias,
    StorageError,
    UnknownAlias,
)
from .policy import DEFAULT_TTL, Policy
from .storage import MemoryStorage, Storage
from .storage.registry import storage_from_url
from .timeline import Direction, OrderEvent, Timeline, TimelineEntry
from .tracker import DEFAULT_STORE, Tracker

if TYPE_CHECKING:
    from .addresses import RealAddress as RealAddress
    from .addresses import normalize_address as normalize_address
    from .codec import AliasCodec as AliasCodec
    from .codec import Token as Token
    from .codec import TokenFormat as TokenFormat
    from .errors import CorruptRecord as CorruptRecord
    from .errors import DeliveryError as DeliveryError
    from .errors import ExpiryReason as ExpiryReason
    from .errors import MissingExtra as MissingExtra
    from .errors import MissingParticipant as MissingParticipant
    from .errors import UnknownAddressKey as UnknownAddressKey
    from .errors import UnrepresentableAddress as UnrepresentableAddress
    from .policy import Fallback as Fallback
    from .relay import Outcome as Outcome
    from .relay import Relay as Relay
    from .relay import RelayResult as RelayResult
    from .storage import Tombstone as Tombstone
    from .storage.registry import register_storage_scheme as register_storage_scheme
    from .strategies import AliasStrategy as AliasStrategy
    from .strategies import available_strategies as available_strategies
    from .strategies import register_strategy as register_strategy
    from .timeline import AliasEvent as AliasEvent
    from .timeline import EntryKind as EntryKind
    from .tracker import Rotation as Rotation
    from .tracker import Verified as Verified

__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_TTL",
    "Alias",
    "AliasStatus",
    "Clock",
    "ConfigurationError",
    "CtAliasError",
    "Direction",
    "ExpiredAlias",
    "ForgedAlias",
    "FrozenClock",
    "InvalidAddress",
    "InvalidArgument",
    "MalformedAlias",
    "MemoryStorage",
    "OrderEvent",
    "Policy",
    "RevokedAlias",
    "Role",
    "Storage",
    "StorageError",
    "SystemClock",
    "Timeline",
    "TimelineEntry",
    "Tracker",
    "UnknownAlias",
    "storage_from_url",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Names this package exported before its API was curated: still importable
#: from it (loaded on first use), documented in their own modules.
_ELSEWHERE = {
    "RealAddress": "addresses",
    "normalize_address": "addresses",
    "AliasCodec": "codec",
    "Token": "codec",
    "TokenFormat": "codec",
    "CorruptRecord": "errors",
    "DeliveryError": "errors",
    "ExpiryReason": "errors",
    "MissingExtra": "errors",
    "MissingParticipant": "errors",
    "UnknownAddressKey": "errors",
    "UnrepresentableAddress": "errors",
    "Fallback": "policy",
    "Outcome": "relay",
    "Relay": "relay",
    "RelayResult": "relay",
    "Tombstone": "storage",
    "register_storage_scheme": "storage.registry",
    "AliasStrategy": "strategies",
    "available_strategies": "strategies",
    "register_strategy": "strategies",
    "AliasEvent": "timeline",
    "EntryKind": "timeline",
    "Rotation": "tracker",
    "Verified": "tracker",
}

#: Old names, deprecated (they warn); removed in the next release.
_deprecated = renamed(
    __name__,
    {
        "AliasStore": "Storage",
        "MemoryStore": "MemoryStorage",
        "register_store_scheme": "register_storage_scheme",
        "store_from_url": "storage_from_url",
    },
    globals(),
    stacklevel=3,
)


def __getattr__(name: str) -> Any:
    """Load a name documented in another module on first use (the relay, for one)."""
    module = _ELSEWHERE.get(name)
    if module is None:
        return _deprecated(name)
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ELSEWHERE})
