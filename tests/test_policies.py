"""The tracker's policy set (ct_alias._policies): strategies made and read per policy."""

from __future__ import annotations

import pytest

from ct_alias import (
    ConfigurationError,
    FrozenClock,
    MemoryStorage,
    Policy,
    Tracker,
    register_strategy,
)

from .hostile import DOMAIN, START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


def test_a_strategy_that_makes_invalid_aliases_is_a_configuration_error(clock: FrozenClock) -> None:
    class Broken:
        name = "hostile-broken"

        def __init__(self, codec: object) -> None:
            del codec

        def make(self, real: object, *, domain: str, expires_at: object) -> str:
            del real, expires_at
            return "\u00e9" * 10 + "@" + domain

        def read(self, local: str, domain: str, *, alias_domain: str) -> None:
            del local, domain, alias_domain

    class Misnamed(Broken):
        name = "something-else"

    register_strategy("hostile-broken", Broken, replace=True)
    register_strategy("hostile-misnamed", Misnamed, replace=True)
    tracker = make_tracker(MemoryStorage(), clock, policies={})
    tracker.set_policy("broken", Policy(domain=DOMAIN, strategy="hostile-broken"))
    with pytest.raises(ConfigurationError, match="invalid alias"):
        tracker.mask(CUSTOMER, conversation="o1", store="broken")
    with pytest.raises(ConfigurationError, match="built one named"):
        tracker.set_policy("misnamed", Policy(domain=DOMAIN, strategy="hostile-misnamed"))
    with pytest.raises(ConfigurationError, match="unknown alias strategy"):
        tracker.set_policy("unknown", Policy(domain=DOMAIN, strategy="no-such-strategy"))
