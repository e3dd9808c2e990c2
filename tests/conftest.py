"""Shared fixtures: a frozen clock and a tracker on a memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings

from ct_alias import FrozenClock, MemoryStorage, Policy, Tracker

from .sql_servers import (  # noqa: F401 - fixtures shared by the SQL tests
    mariadb,
    mariadb_store,
    postgresql,
    postgresql_store,
    sql_store,
    target,
    worker,
)

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if __import__("os").environ.get("CI") else "dev")

START = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "ct.example.com"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def store() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def tracker(store: MemoryStorage, clock: FrozenClock) -> Tracker:
    t = Tracker(
        storage=store,
        keys=[
            "925Pi-0zijU7qtri9rxhHnzmWY7rGTA-YyFRAdg0vxA",
            "25aern6xmujOWfUE7LgHIdwSiqXTKHiKzHpoRsmRCgI",
        ],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="9lcVd02RrGA8kdbDNcRMc1z0JsxviVpzCiSBCUufjaI",
    )
    t.set_policy("simple-store", Policy(strategy="simple", domain=DOMAIN, ttl=timedelta(days=60)))
    return t
