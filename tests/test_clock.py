"""Clocks: the system's UTC clock, and a frozen one tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ct_alias import (
    FrozenClock,
    SystemClock,
)
from ct_alias.clock import Clock, as_utc


def test_frozen_clock() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FrozenClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    assert clock.advance(timedelta(hours=2)) == start + timedelta(hours=2)
    clock.set(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=3))))
    assert clock.now() == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert "2026-01-01T09:00:00" in repr(clock)
    with pytest.raises(TypeError):
        clock.advance(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        FrozenClock(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        as_utc("2026-01-01")  # type: ignore[arg-type]


def test_system_clock() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert isinstance(SystemClock(), Clock)
    assert repr(SystemClock()) == "SystemClock()"
