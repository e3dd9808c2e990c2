"""The tracker's timeline methods (ct_alias._recording): recording, notifying, reading."""

from __future__ import annotations

import pytest

from ct_alias import (
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    Role,
    Tracker,
)

from .hostile import START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


def test_a_notification_that_cannot_be_composed_is_an_invalid_argument(tracker: Tracker) -> None:
    tracker.mask(CUSTOMER, conversation="o1")
    tracker.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    with pytest.raises(InvalidArgument) as info:
        tracker.notify("o1", "invoiced", subject="Pedido", text="\ud800")
    assert info.value.name == "notification"
    assert CUSTOMER not in str(info.value)
