"""What the relay writes on a timeline when it refuses or fails a delivery.

``delivery-rejected`` and ``delivery-failed`` events are persisted (and shown
to the shop), so their fields are a format: these tests pin the field names
and values, the once-an-hour limit at its exact boundary, and the checks of
:meth:`Relay.delivery_failed`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ct_alias import (
    Alias,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    Policy,
    Relay,
    TimelineEntry,
    Tracker,
)
from ct_alias.relay import REFUSAL_RECORD_INTERVAL

# made with secrets.token_urlsafe(32)
SIGNING_KEY = "q9mX2Lr7Vt0bN4sK8wE1yH6uJ3pC5dZ0fG2aR7iT9oM"
INDEX_KEY = "hB4nW8tY1rE6uI3oP9aS2dF7gJ0kL5zX8cV1bN4mQ6w"
DOMAIN = "ct.example.com"
CUSTOMER = "maria.silva@example.com.br"
CARRIER = "rastreio@transportadora.example.net"
ORDER = "order-1"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return Tracker(
        storage=MemoryStorage(),
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
    )


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


def big(alias: Alias) -> bytes:
    return f"From: {CARRIER}\r\nTo: {alias.address}\r\n\r\n".encode() + b"x" * 5000 + b"\r\n"


def rejections(tracker: Tracker) -> list[TimelineEntry]:
    return [e for e in tracker.timeline(ORDER).events if e.name == "delivery-rejected"]


def test_a_refused_message_is_recorded_with_its_fields(tracker: Tracker, customer: Alias) -> None:
    data = big(customer)
    (outcome,) = Relay(tracker, max_size=1000).handle(CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    (event,) = rejections(tracker)
    assert event.data == {
        "code": 552,
        "status": "5.3.4",
        "reason": outcome.reason,
        "size": len(data),
        "bounce": False,
        "ref": customer.key,
        "role": "customer",
    }


def test_a_refused_bounce_says_so(tracker: Tracker, customer: Alias) -> None:
    Relay(tracker, max_size=1000).handle("<>", [customer.address], big(customer))
    (event,) = rejections(tracker)
    assert event.data["bounce"] is True


def test_a_refusal_at_rcpt_is_recorded_with_its_stage(
    tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=61))
    outcome = Relay(tracker).check_recipient(customer.address)
    assert outcome is not None
    (event,) = rejections(tracker)
    assert event.data == {
        "code": outcome.code,
        "status": outcome.status,
        "reason": outcome.reason,
        "stage": "rcpt",
    }


def test_refusals_of_one_alias_are_counted_once_whatever_its_spelling(
    tracker: Tracker, customer: Alias
) -> None:
    relay = Relay(tracker, max_size=1000)
    for spelling in (customer.address, f"<{customer.address.upper()}>", f" {customer.address}"):
        (outcome,) = relay.handle(CARRIER, [spelling], big(customer)).outcomes
        assert outcome.code == 552
    assert len(rejections(tracker)) == 1


def test_the_same_refusal_is_recorded_again_exactly_after_the_interval(
    tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    relay = Relay(tracker, max_size=1000)
    relay.handle(CARRIER, [customer.address], big(customer))
    clock.advance(timedelta(seconds=REFUSAL_RECORD_INTERVAL - 1))
    relay.handle(CARRIER, [customer.address], big(customer))
    assert len(rejections(tracker)) == 1
    clock.advance(timedelta(seconds=1))  # exactly the interval after the first
    relay.handle(CARRIER, [customer.address], big(customer))
    assert len(rejections(tracker)) == 2


def test_another_reason_is_recorded_at_once(tracker: Tracker, customer: Alias) -> None:
    relay = Relay(tracker, max_size=1000)
    relay.handle(CARRIER, [customer.address], big(customer))
    looping = (
        f"From: {CARRIER}\r\n" + "X-CT-Alias-Conversation: order-1\r\n" * 3 + "\r\nHi\r\n"
    ).encode()
    (outcome,) = relay.handle(CARRIER, [customer.address], looping).outcomes
    assert outcome.code == 554
    assert [e.data["code"] for e in rejections(tracker)] == [552, 554]


# -- delivery-failed ----------------------------------------------------------------


def accepted(tracker: Tracker, customer: Alias) -> tuple[Relay, object]:
    relay = Relay(tracker)
    data = f"From: {CARRIER}\r\nTo: {customer.address}\r\nSubject: x\r\n\r\nHi\r\n".encode()
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    return relay, outcome


@pytest.mark.parametrize(("code", "status", "hard"), [(550, "5.1.1", True), (451, "4.4.1", False)])
def test_delivery_failed_records_code_status_and_the_alias(
    tracker: Tracker, customer: Alias, code: int, status: str, hard: bool
) -> None:
    relay, outcome = accepted(tracker, customer)
    entry = relay.delivery_failed(outcome, code, status, permanent=hard)  # type: ignore[arg-type]
    assert entry.name == "delivery-failed"
    assert entry.data == {
        "code": code,
        "status": status,
        "hard": hard,
        "ref": customer.key,
        "role": "customer",
    }
    assert [e.name for e in tracker.timeline(ORDER).events][-1] == "delivery-failed"


@pytest.mark.parametrize("code", [400, 599])
def test_delivery_failed_accepts_the_edges_of_the_failure_codes(
    tracker: Tracker, customer: Alias, code: int
) -> None:
    relay, outcome = accepted(tracker, customer)
    entry = relay.delivery_failed(outcome, code, "4.0.0", permanent=False)  # type: ignore[arg-type]
    assert entry.data["code"] == code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (399, "5.1.1"),
        (600, "5.1.1"),
        (250, "2.0.0"),
        (True, "5.1.1"),
        ("550", "5.1.1"),
        (550, "6.1.1"),
        (550, "5.1"),
        (550, "5.1.1 "),
        (550, "5.1234.1"),
        (550, "5.1.1234"),
        (550, 511),
    ],
)
def test_delivery_failed_refuses_what_is_not_an_smtp_failure(
    tracker: Tracker, customer: Alias, code: object, status: object
) -> None:
    relay, outcome = accepted(tracker, customer)
    with pytest.raises(InvalidArgument):
        relay.delivery_failed(outcome, code, status, permanent=True)  # type: ignore[arg-type]
    assert "delivery-failed" not in [e.name for e in tracker.timeline(ORDER).events]


def test_delivery_failed_needs_an_accepted_outcome(tracker: Tracker, customer: Alias) -> None:
    relay = Relay(tracker, max_size=1000)
    (refused,) = relay.handle(CARRIER, [customer.address], big(customer)).outcomes
    with pytest.raises(InvalidArgument):
        relay.delivery_failed(refused, 550, "5.1.1", permanent=True)
    with pytest.raises(InvalidArgument):
        relay.delivery_failed("not an outcome", 550, "5.1.1", permanent=True)  # type: ignore[arg-type]


def test_a_message_to_an_expired_alias_is_recorded_with_its_size(
    tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=61))
    data = f"From: {CARRIER}\r\nTo: {customer.address}\r\n\r\nHi\r\n".encode()
    (outcome,) = Relay(tracker).handle(CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    (event,) = rejections(tracker)
    assert event.data == {
        "code": 550,
        "status": "5.2.1",
        "reason": outcome.reason,
        "size": len(data),
        "bounce": False,
    }


# -- every record lands on its own store's timeline ------------------------------------

SHOP = "loja-2"


def events_of(tracker: Tracker, store: str) -> list[str]:
    return [e.name for e in tracker.timeline(ORDER, store=store).events]


def test_records_of_another_store_land_on_its_timeline(
    tracker: Tracker, clock: FrozenClock
) -> None:
    """The same conversation id in two stores is two conversations."""
    tracker.mask("outro@example.com", conversation=ORDER)  # the default store's order-1
    theirs = tracker.mask(CUSTOMER, conversation=ORDER, store=SHOP)
    relay = Relay(tracker, max_size=1000)
    # refused (too big): delivery-rejected
    relay.handle(CARRIER, [theirs.address], big(theirs))
    # accepted, delivered, then failed downstream
    data = f"From: {CARRIER}\r\nTo: {theirs.address}\r\nSubject: x\r\n\r\nHi\r\n".encode()
    (outcome,) = relay.handle(CARRIER, [theirs.address], data).outcomes
    assert outcome.accepted
    assert outcome.store == SHOP
    assert relay.delivered(outcome) is not None
    relay.delivery_failed(outcome, 550, "5.1.1", permanent=True)
    # expired: refused at RCPT and with the message
    clock.advance(timedelta(days=61))
    relay.check_recipient(theirs.address)
    names = events_of(tracker, SHOP)
    assert names.count("delivery-rejected") == 2
    assert "delivery-failed" in names
    assert len(tracker.timeline(ORDER, store=SHOP).messages) == 1
    assert "delivery-rejected" not in events_of(tracker, "default")
    assert "delivery-failed" not in events_of(tracker, "default")
    assert not tracker.timeline(ORDER).messages
