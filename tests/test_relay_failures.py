"""The relay when storage fails, a header block is too big, or mail loops."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from ct_alias import (
    FrozenClock,
    MemoryStorage,
    Relay,
    Role,
    Tracker,
)
from ct_alias.testing import FailingStorage

from .hostile import START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


def _message(to: str) -> bytes:
    return f"From: Carrier <c@carrier.example>\r\nTo: {to}\r\nSubject: x\r\n\r\nHi\r\n".encode()


def test_relay_storage_failures(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStorage()
    tracker = make_tracker(store, clock)
    relay = Relay(tracker)
    assert repr(relay) == (
        f"<Relay authenticator=Unauthenticated() max_size={relay.max_size} "
        f"max_hops={relay.max_hops} moderators=0>"
    )
    customer = tracker.mask(CUSTOMER, conversation="o1")
    store.failing = {"aliases"}
    with caplog.at_level(logging.ERROR, logger="ct_alias.relay"):
        (outcome,) = relay.handle("c@carrier.example", [customer.address], _message("x")).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")
    assert outcome.conversation == "o1"
    # A refusal whose recording fails is still answered.
    store.failing = {"update"}
    with caplog.at_level(logging.ERROR, logger="ct_alias.relay"):
        (outcome,) = (
            Relay(tracker, max_size=10)
            .handle("c@carrier.example", [customer.address], _message(customer.address))
            .outcomes
        )
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    assert "could not record a refused delivery" in caplog.text


def test_relay_refuses_a_header_block_over_its_limit(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    customer = tracker.mask(CUSTOMER, conversation="o1")
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 900) for i in range(600))
    data = filler + _message(customer.address)
    (outcome,) = Relay(tracker).handle("c@carrier.example", [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    assert "header" in outcome.reason
    events = [e.name for e in tracker.timeline("o1").events]
    assert events[-1] == "delivery-rejected"


def test_relay_refuses_an_expired_stranger_without_a_conversation(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    stranger = make_tracker(MemoryStorage(), clock).mask(CUSTOMER, conversation="o1").address
    clock.advance(timedelta(days=61))
    (outcome,) = Relay(tracker).handle("c@carrier.example", [stranger], _message(stranger)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert outcome.conversation is None


def test_relay_loop_through_an_alias_of_an_alias(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    inner = tracker.mask(CUSTOMER, conversation="o1")
    outer = tracker.mask(inner.address, conversation="o1", role=Role.FOLLOW_UP)
    (outcome,) = Relay(tracker).handle("c@carrier.example", [outer.address], _message("x")).outcomes
    assert (outcome.code, outcome.status) == (554, "5.4.6")
