"""Record after delivery: Relay.delivered and Relay.delivery_failed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ct_alias import FrozenClock, Tracker
from ct_alias.errors import InvalidArgument
from ct_alias.relay import Relay

ORDER = "order-7"
CUSTOMER = "maria@example.com.br"
SENDER = "rastreio@transportadora.example.net"


def mail(message_id: str) -> bytes:
    return (
        f"From: Carrier <{SENDER}>\r\nSubject: Entrega\r\nMessage-ID: <{message_id}>\r\n\r\n"
        "Chega amanha.\r\n"
    ).encode()


def test_recorded_when_delivered_with_the_time_of_the_hand_off(
    tracker: Tracker, clock: FrozenClock
) -> None:
    relay = Relay(tracker)
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    (outcome,) = relay.handle(SENDER, [customer.address], mail("m1@example.net")).outcomes
    assert outcome.accepted
    assert tracker.timeline(ORDER).messages == ()
    later = clock.advance(timedelta(minutes=7))  # the downstream took it only now
    entry = relay.delivered(outcome)
    assert entry is not None
    assert entry.at == later
    assert entry.name == "outbound"
    assert relay.delivered(outcome) == entry  # a second report is the same entry
    (recorded,) = tracker.timeline(ORDER).messages
    assert recorded.at == later
    assert recorded.data["subject"] == "Entrega"


def test_a_failed_delivery_is_an_event_never_a_message(tracker: Tracker) -> None:
    relay = Relay(tracker)
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    (outcome,) = relay.handle(SENDER, [customer.address], mail("m2@example.net")).outcomes
    soft = relay.delivery_failed(outcome, 451, "4.2.0", permanent=False)
    hard = relay.delivery_failed(outcome, 550, "5.1.1", permanent=True)
    assert tracker.timeline(ORDER).messages == ()
    events = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-failed"]
    assert events == [soft, hard]
    assert hard.data == {
        "code": 550,
        "status": "5.1.1",
        "hard": True,
        "ref": customer.key,
        "role": "customer",
    }
    assert soft.data["hard"] is False
    assert CUSTOMER not in repr(events)


def test_only_accepted_outcomes_and_smtp_codes(tracker: Tracker) -> None:
    relay = Relay(tracker)
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    (refused,) = relay.handle(SENDER, ["nobody@elsewhere.example"], mail("m3@x")).outcomes
    (outcome,) = relay.handle(SENDER, [customer.address], mail("m4@x")).outcomes
    with pytest.raises(InvalidArgument):
        relay.delivered(refused)
    with pytest.raises(InvalidArgument):
        relay.delivery_failed(refused, 550, "5.1.1", permanent=True)
    with pytest.raises(InvalidArgument):
        relay.delivered("not an outcome")  # type: ignore[arg-type]
    for code, status in ((250, "2.0.0"), (True, "4.0.0"), (600, "5.0.0"), (550, "5.1"), (550, 5)):
        with pytest.raises(InvalidArgument):
            relay.delivery_failed(outcome, code, status, permanent=True)  # type: ignore[arg-type]
    assert [e.name for e in tracker.timeline(ORDER).events].count("delivery-failed") == 0
