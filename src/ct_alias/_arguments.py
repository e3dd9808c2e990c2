"""Argument checks of the tracker's public methods, with the limits declared once.

Each check returns the value as the tracker uses it, or raises
:class:`~ct_alias.errors.InvalidArgument` naming the argument. The identifier
limits come from :mod:`ct_alias.vocabulary`, where the SQL schema reads them too.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Final

from .aliases import Role
from .clock import as_utc
from .errors import ConfigurationError, InvalidArgument
from .storage.base import Storage
from .timeline import Direction, OrderEvent, decode_cursor
from .vocabulary import MAX_CONVERSATION, MAX_DURATION, MAX_EVENT, MAX_STORE

__all__ = [
    "MAX_DATA",
    "MAX_FROM_NAME",
    "MAX_REASON",
    "MAX_SUBJECT",
    "conversation",
    "cursor",
    "direction",
    "duration",
    "event_name",
    "identifier",
    "json_data",
    "message",
    "moment",
    "positive_int",
    "role",
    "storage",
    "store",
    "text",
]

#: The longest reason (of an unmask or a revocation), in characters.
MAX_REASON: Final = 500
#: The longest subject line (RFC 5322 §2.1.1's line limit).
MAX_SUBJECT: Final = 998
#: The most event data, in characters of JSON.
MAX_DATA: Final = 65_536
#: The longest display name of a notification's sender.
MAX_FROM_NAME: Final = MAX_STORE * 2


def identifier(name: str, value: object, limit: int) -> str:
    """A printable, non-empty name of at most ``limit`` characters, without outer spaces."""
    if not isinstance(value, str):
        raise InvalidArgument(name, f"expected a str, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise InvalidArgument(name, f"must be 1 to {limit} characters long")
    if not value.isprintable() or value != value.strip():
        raise InvalidArgument(name, "must be printable, without control characters or outer spaces")
    return value


def conversation(value: object) -> str:
    """A conversation id (an order id)."""
    return identifier("conversation", value, MAX_CONVERSATION)


def store(value: object) -> str:
    """A store (tenant) name."""
    return identifier("store", value, MAX_STORE)


def text(name: str, value: object, limit: int) -> str:
    """Printable text (no line breaks) of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise InvalidArgument(name, f"expected a str, not {type(value).__name__}")
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(name, f"must be printable text of at most {limit} characters")
    return value


def event_name(value: object) -> str:
    """An :class:`~ct_alias.timeline.OrderEvent`, or a host-defined event name."""
    if isinstance(value, OrderEvent):
        return value.value
    return identifier("event", value, MAX_EVENT)


def direction(value: object) -> Direction:
    """A :class:`~ct_alias.timeline.Direction`, or its value."""
    if isinstance(value, str) and value in Direction._value2member_map_:
        return Direction(value)
    raise InvalidArgument("direction", f"must be 'inbound' or 'outbound', not {value!r}")


def duration(name: str, value: object, *, positive: bool = False) -> timedelta:
    """A timedelta between zero (or more, if ``positive``) and :data:`MAX_DURATION`."""
    if not isinstance(value, timedelta):
        raise InvalidArgument(name, f"expected a timedelta, not {type(value).__name__}")
    if value < timedelta(0) or (positive and not value) or value > MAX_DURATION:
        raise InvalidArgument(
            name,
            f"must be {'positive' if positive else 'zero or positive'} "
            f"and at most {MAX_DURATION.days} days",
        )
    return value


def moment(name: str, value: object) -> datetime:
    """An aware datetime, in UTC."""
    try:
        return as_utc(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(name, str(exc)) from None


def json_data(data: object) -> dict[str, Any]:
    """A JSON-compatible mapping of at most :data:`MAX_DATA` characters, as a fresh dict."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidArgument("data", f"expected a mapping, not {type(data).__name__}")
    try:
        encoded = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("data", f"not JSON-compatible: {exc}") from None
    if len(encoded) > MAX_DATA:
        raise InvalidArgument("data", f"more than {MAX_DATA} characters as JSON")
    loaded: dict[str, Any] = json.loads(encoded)
    return loaded


def role(value: object) -> Role:
    """A :class:`~ct_alias.aliases.Role`, or its value."""
    if isinstance(value, Role):
        return value
    if isinstance(value, str) and value in Role._value2member_map_:
        return Role(value)
    choices = ", ".join(r.value for r in Role)
    raise InvalidArgument("role", f"must be one of {choices}, not {value!r}")


def positive_int(name: str, value: object) -> int:
    """A positive int (a page size, a batch size)."""
    if not isinstance(value, int) or value < 1:
        raise InvalidArgument(name, "must be a positive int")
    return value


def cursor(value: object) -> tuple[datetime, int]:
    """The position a timeline cursor (a page's ``next_after``) stands for."""
    try:
        return decode_cursor(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        raise InvalidArgument("after", "not a timeline cursor") from None


def message(value: object) -> bytes | EmailMessage:
    """Raw message bytes (any bytes-like object), or an :class:`~email.message.EmailMessage`."""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, (bytes, EmailMessage)):
        raise InvalidArgument(
            "message", f"expected bytes or an EmailMessage, not {type(value).__name__}"
        )
    return value


def storage(value: Storage | None, deprecated: Storage | None) -> Storage:
    """The tracker's storage, given as ``storage=`` (or, deprecated, ``store=``).

    Raises:
        ConfigurationError: neither, or both.
    """
    if deprecated is not None:
        if value is not None:
            raise ConfigurationError("pass storage= only (store= is its deprecated name)")
        warnings.warn(
            "Tracker(store=...) is deprecated: use Tracker(storage=...)",
            DeprecationWarning,
            stacklevel=3,
        )
        value = deprecated
    if value is None:
        raise ConfigurationError("Tracker() needs storage=, e.g. MemoryStorage()")
    return value
