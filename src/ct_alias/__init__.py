"""ct_alias: order-scoped e-mail masking with a per-order timeline.

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

from ._deprecated import renamed
from .addresses import RealAddress, normalize_address
from .aliases import Alias, AliasStatus, Role
from .clock import Clock, FrozenClock, SystemClock
from .codec import AliasCodec, Token, TokenFormat
from .errors import (
    ConfigurationError,
    CorruptRecord,
    CtAliasError,
    DeliveryError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    InvalidAddress,
    InvalidArgument,
    MalformedAlias,
    MissingExtra,
    MissingParticipant,
    RevokedAlias,
    StorageError,
    UnknownAddressKey,
    UnknownAlias,
    UnrepresentableAddress,
)
from .policy import DEFAULT_TTL, Fallback, Policy
from .relay import Outcome, Relay, RelayResult
from .storage import MemoryStorage, Storage, Tombstone
from .storage.registry import register_storage_scheme, storage_from_url
from .strategies import AliasStrategy, available_strategies, register_strategy
from .timeline import AliasEvent, Direction, EntryKind, OrderEvent, Timeline, TimelineEntry
from .tracker import DEFAULT_STORE, Rotation, Tracker, Verified

__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_TTL",
    "Alias",
    "AliasCodec",
    "AliasEvent",
    "AliasStatus",
    "AliasStrategy",
    "Clock",
    "ConfigurationError",
    "CorruptRecord",
    "CtAliasError",
    "DeliveryError",
    "Direction",
    "EntryKind",
    "ExpiredAlias",
    "ExpiryReason",
    "Fallback",
    "ForgedAlias",
    "FrozenClock",
    "InvalidAddress",
    "InvalidArgument",
    "MalformedAlias",
    "MemoryStorage",
    "MissingExtra",
    "MissingParticipant",
    "OrderEvent",
    "Outcome",
    "Policy",
    "RealAddress",
    "Relay",
    "RelayResult",
    "RevokedAlias",
    "Role",
    "Rotation",
    "Storage",
    "StorageError",
    "SystemClock",
    "Timeline",
    "TimelineEntry",
    "Token",
    "TokenFormat",
    "Tombstone",
    "Tracker",
    "UnknownAddressKey",
    "UnknownAlias",
    "UnrepresentableAddress",
    "Verified",
    "available_strategies",
    "normalize_address",
    "register_storage_scheme",
    "register_strategy",
    "storage_from_url",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Old names, deprecated (they warn); removed in the next release.
__getattr__ = renamed(
    __name__,
    {
        "AliasStore": "Storage",
        "MemoryStore": "MemoryStorage",
        "register_store_scheme": "register_storage_scheme",
        "store_from_url": "storage_from_url",
    },
    globals(),
)
