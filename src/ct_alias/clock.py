"""Time sources.

All of ct_alias asks an injected :class:`Clock` for the time, so tests move
time forward with :class:`FrozenClock` instead of sleeping, and nothing deep
inside the library calls ``datetime.now()``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FrozenClock", "SystemClock", "as_utc"]


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock: :func:`datetime.now` in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """A clock that only moves when told to; safe to share between threads.

    Args:
        start: the initial time; must be timezone-aware (converted to UTC).

    Example:
        >>> clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
        >>> clock.advance(timedelta(days=61)).isoformat()
        '2026-03-03T00:00:00+00:00'
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = as_utc(start)

    def now(self) -> datetime:
        """Return the frozen time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward (or back, with a negative delta) and return the new time."""
        if not isinstance(delta, timedelta):
            raise TypeError(f"advance() takes a timedelta, not {type(delta).__name__}")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (timezone-aware)."""
        moment = as_utc(moment)
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()!r})"


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` converted to UTC; naive datetimes are refused.

    Raises:
        ValueError: ``moment`` has no timezone.
        TypeError: ``moment`` is not a datetime.
    """
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: ct_alias needs timezone-aware datetimes")
    return moment.astimezone(UTC)
