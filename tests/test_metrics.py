"""Response metrics: what counts as a customer message and a reply, turns, calendars, paging."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ct_alias import (
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    OrderEvent,
    Policy,
    Role,
    Storage,
    Tracker,
)
from ct_alias.auth import AuthenticationResults
from ct_alias.metrics import ConversationMetrics, ResponseTimes
from ct_alias.relay import Relay
from ct_alias.storage import MessageScan
from ct_alias.storage.sql import SQLStorage

from .conftest import DOMAIN, START

CUSTOMER = "maria.silva@example.com.br"
SHOP = "vendas@loja.example.com"
CARRIER = "rastreio@transportadora.example.net"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


class Shop:
    """A store's conversations, written as the host and the relay record them."""

    def __init__(self, tracker: Tracker, clock: FrozenClock) -> None:
        self.tracker = tracker
        self.clock = clock
        self.sent = 0

    def open(self, order: str) -> None:
        self.tracker.mask(CUSTOMER, conversation=order)
        self.tracker.mask(SHOP, conversation=order, role=Role.STORE)

    def _record(self, order: str, sender: str, to: str, direction: str, *extra: str) -> None:
        self.sent += 1
        data = (
            "\r\n".join(
                [
                    f"From: {sender}",
                    f"To: {to}",
                    "Subject: pedido",
                    f"Message-ID: <m{self.sent}@example.test>",
                    *extra,
                ]
            )
            + "\r\n\r\nTexto.\r\n"
        ).encode()
        self.tracker.record_message(order, data, direction=direction)

    def customer_writes(self, order: str, *extra: str) -> None:
        self._record(order, CUSTOMER, SHOP, "inbound", *extra)

    def store_writes(self, order: str, *extra: str) -> None:
        self._record(order, SHOP, CUSTOMER, "outbound", *extra)

    def carrier_writes(self, order: str) -> None:
        self.tracker.mask(CARRIER, conversation=order, role=Role.CONTACT)
        self._record(order, CARRIER, CUSTOMER, "outbound")

    def later(self, delta: timedelta) -> None:
        self.clock.advance(delta)


@pytest.fixture
def shop(tracker: Tracker, clock: FrozenClock) -> Shop:
    return Shop(tracker, clock)


def test_an_empty_conversation(shop: Shop) -> None:
    shop.open("o1")
    assert shop.tracker.timeline("o1").metrics() == ConversationMetrics(
        customer_messages=0,
        store_replies=0,
        first_customer_message_at=None,
        first_reply_at=None,
        time_to_first_reply=None,
        awaiting_reply=False,
        awaiting_since=None,
        reply_times=(),
    )


def test_turns_replies_and_what_awaits(shop: Shop) -> None:
    shop.open("o1")
    shop.store_writes("o1")  # the store writing first is no reply
    shop.later(HOUR)
    shop.customer_writes("o1")
    first_question = shop.clock.now()
    shop.later(10 * MINUTE)
    shop.customer_writes("o1")  # the same turn
    shop.later(50 * MINUTE)
    shop.store_writes("o1")
    first_reply = shop.clock.now()
    shop.later(MINUTE)
    shop.store_writes("o1")  # again: no turn open
    shop.later(HOUR)
    shop.customer_writes("o1")
    waiting = shop.clock.now()
    metrics = shop.tracker.timeline("o1").metrics()
    assert metrics.customer_messages == 3
    assert metrics.store_replies == 1
    assert metrics.first_customer_message_at == first_question
    assert metrics.first_reply_at == first_reply
    assert metrics.time_to_first_reply == HOUR
    assert metrics.reply_times == (HOUR,)
    assert (metrics.awaiting_reply, metrics.awaiting_since) == (True, waiting)
    assert metrics.to_dict() == {
        "customerMessages": 3,
        "storeReplies": 1,
        "firstCustomerMessageAt": "2026-01-01T01:00:00Z",
        "firstReplyAt": "2026-01-01T02:00:00Z",
        "timeToFirstReply": 3600.0,
        "awaitingReply": True,
        "awaitingSince": "2026-01-01T03:01:00Z",
        "replyTimes": [3600.0],
    }


def test_automatic_messages_never_count(shop: Shop) -> None:
    shop.open("o1")
    shop.customer_writes("o1")
    shop.later(MINUTE)
    shop.tracker.notify("o1", OrderEvent.DISPATCHED, subject="Enviado", text="Seu pedido saiu.")
    shop.later(MINUTE)
    shop.store_writes("o1", "Auto-Submitted: auto-replied")
    shop.store_writes("o1", "Precedence: bulk")
    shop.store_writes("o1", "X-Autoreply: yes")
    shop.customer_writes("o1", "Auto-Submitted: auto-replied")  # a vacation reply
    metrics = shop.tracker.timeline("o1").metrics()
    assert (metrics.customer_messages, metrics.store_replies, metrics.awaiting_reply) == (
        1,
        0,
        True,
    )
    shop.later(MINUTE)
    shop.store_writes("o1", "Auto-Submitted: no")  # a person, saying so
    assert shop.tracker.timeline("o1").metrics().reply_times == (3 * MINUTE,)


def test_contacts_are_neither_customers_nor_the_store(shop: Shop) -> None:
    shop.open("o1")
    shop.customer_writes("o1")
    shop.carrier_writes("o1")
    metrics = shop.tracker.timeline("o1").metrics()
    assert (metrics.store_replies, metrics.awaiting_reply) == (0, True)


def test_a_calendar_counts_business_hours_only(shop: Shop) -> None:
    def business(start: datetime, end: datetime) -> timedelta:
        """09:00-18:00 UTC on any day, hour by hour is enough for a test."""
        counted = timedelta(0)
        moment = start
        while moment < end:
            step = min(end, moment.replace(minute=0, second=0) + HOUR)
            if 9 <= moment.hour < 18:
                counted += step - moment
            moment = step
        return counted

    shop.open("o1")
    shop.later(17 * HOUR)  # 17:00
    shop.customer_writes("o1")
    shop.later(17 * HOUR)  # 10:00 the next day
    shop.store_writes("o1")
    timeline = shop.tracker.timeline("o1")
    assert timeline.metrics().time_to_first_reply == 17 * HOUR
    assert timeline.metrics(calendar=business).time_to_first_reply == 2 * HOUR
    with pytest.raises(InvalidArgument):
        timeline.metrics(calendar=lambda a, b: 3)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidArgument):
        timeline.metrics(calendar="9-18")  # type: ignore[arg-type]


def test_unverified_relayed_mail_is_nobody_s(tracker: Tracker, shop: Shop) -> None:
    shop.open("o1")
    _, store = tracker.aliases("o1")
    relay = Relay(tracker)  # no authenticator: every author is unverified
    mail = f"From: {CUSTOMER}\r\nTo: {store.address}\r\nSubject: oi\r\n\r\noi\r\n".encode()
    (outcome,) = relay.handle(CUSTOMER, [store.address], mail).outcomes
    relay.delivered(outcome)
    assert tracker.timeline("o1").metrics().customer_messages == 0


def test_relayed_mail_from_authenticated_participants_counts(tracker: Tracker, shop: Shop) -> None:
    shop.open("o1")
    customer, store = tracker.aliases("o1")
    mta = "mx.ct.example.com"
    relay = Relay(tracker, authenticator=AuthenticationResults(mta))

    def relayed(sender: str, to: str, ident: str) -> None:
        domain = sender.rpartition("@")[2]
        data = (
            f"Authentication-Results: {mta}; dmarc=pass header.from={domain}\r\n"
            f"From: {sender}\r\nTo: {to}\r\nSubject: oi\r\nMessage-ID: <{ident}@x>\r\n\r\noi\r\n"
        ).encode()
        (outcome,) = relay.handle(sender, [to], data).outcomes
        assert outcome.accepted, outcome.reply
        relay.delivered(outcome)

    relayed(CUSTOMER, store.address, "q")
    shop.later(2 * HOUR)
    relayed(SHOP, customer.address, "a")
    assert tracker.timeline("o1").metrics().reply_times == (2 * HOUR,)


# -- a store's response times --------------------------------------------------------


def _store_history(shop: Shop) -> datetime:
    """Three conversations; returns the start of the period asked about."""
    for order in ("o1", "o2", "o3", "old"):
        shop.open(order)
    shop.customer_writes("old")  # before the period: its reply does not count
    shop.later(HOUR)
    since = shop.clock.now()
    shop.store_writes("old")
    shop.customer_writes("o1")
    shop.customer_writes("o2")
    shop.later(HOUR)
    shop.store_writes("o1")  # 1 h
    shop.later(2 * HOUR)
    shop.store_writes("o2")  # 3 h
    shop.customer_writes("o2")
    shop.later(HOUR)
    shop.store_writes("o2")  # 1 h
    shop.customer_writes("o3")  # waiting
    return since


def test_response_times_over_a_store(shop: Shop) -> None:
    since = _store_history(shop)
    times = shop.tracker.response_times(since=since)
    assert times == ResponseTimes(
        store="default",
        since=since,
        until=shop.clock.now(),
        median=HOUR,
        replies=3,
        awaiting=1,
        conversations=3,
    )
    assert times.to_dict()["median"] == 3600.0
    named = shop.tracker.response_times(since=since, conversations=["o2", "o1", "o2"])
    assert (named.replies, named.median, named.awaiting) == (3, HOUR, 0)
    other = shop.tracker.response_times(store="another", since=since)
    assert (other.replies, other.median) == (0, None)


def test_the_period_ends_at_until(shop: Shop) -> None:
    since = _store_history(shop)
    # turns that started in the first hour: o1 (1 h) and o2 (3 h); their replies came later
    times = shop.tracker.response_times(since=since, until=since + HOUR)
    assert (times.replies, times.median, times.awaiting) == (2, 2 * HOUR, 0)


class _NoScan:
    """A storage without MessageScan (a third-party backend)."""

    def __init__(self, inner: MemoryStorage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "store_messages":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_storage_that_cannot_scan_needs_the_conversations(clock: FrozenClock) -> None:
    storage = _NoScan(MemoryStorage())
    assert not isinstance(storage, MessageScan)
    tracker = Tracker(
        storage=storage,  # type: ignore[arg-type]
        keys=["mR5cBYD6xMP2g8oJw8s3HVr_5fSKmvRQ0QJ7vT6lZGc"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="mTBG0rQ2cOSXSpdQ2f3kTZ8rI1k6Qp2Qb1G7n1i1FyE",
    )
    shop = Shop(tracker, clock)
    since = _store_history(shop)
    with pytest.raises(InvalidArgument, match="conversations"):
        tracker.response_times(since=since)
    assert tracker.response_times(since=since, conversations=["o1", "o2", "o3"]).replies == 3


def test_arguments(tracker: Tracker) -> None:
    with pytest.raises(InvalidArgument):
        tracker.response_times(since=datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidArgument):
        tracker.response_times(since=START, conversations="o1")
    with pytest.raises(InvalidArgument):
        tracker.response_times(since=START, calendar=3)  # type: ignore[arg-type]


def test_pages_are_read_by_time_not_whole_timelines(
    shop: Shop, tracker: Tracker, store: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many conversations, most of them before the period: only the period is read."""
    for n in range(40):
        shop.open(f"past-{n}")
        for _ in range(20):
            shop.customer_writes(f"past-{n}")
            shop.store_writes(f"past-{n}")
    shop.later(HOUR)
    since = shop.clock.now()
    shop.open("o1")
    for n in range(1200):
        shop.later(MINUTE)
        if n % 2 == 0:
            shop.customer_writes("o1")
        else:
            shop.store_writes("o1")
    read: list[int] = []
    scan = store.store_messages

    def counted(*args: object, **kwargs: object) -> object:
        page = scan(*args, **kwargs)  # type: ignore[arg-type]
        read.append(len(page))
        return page

    monkeypatch.setattr(store, "store_messages", counted)
    monkeypatch.setattr(store, "entries", lambda *a, **k: pytest.fail("read a whole timeline"))
    times = tracker.response_times(since=since)
    assert read == [500, 500, 200]
    assert (times.replies, times.median, times.conversations) == (600, MINUTE, 1)


def _scan_contract(storage: Storage, clock: FrozenClock) -> None:
    tracker = Tracker(
        storage=storage,
        keys=["oJ6Cq8w7Lr1iEwq6F0vS5rVdXnB3yT9u2aKc4mZpGh8"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="Q1xw3tZrF5nV7bK9pL2mH4cJ6dS8aG0eR3uY5iO7wE1",
    )
    shop = Shop(tracker, clock)
    since = _store_history(shop)
    assert tracker.response_times(since=since).replies == 3
    assert isinstance(storage, MessageScan)
    first = storage.store_messages("default", since=since, limit=2)
    rest = storage.store_messages(
        "default", since=since, after=(first[-1].at, first[-1].seq or 0), limit=100
    )
    every = first + rest
    assert [e.kind.value for e in every] == ["message"] * len(every)
    assert all(e.at >= since for e in every)
    assert [(e.at, e.seq) for e in every] == sorted((e.at, e.seq) for e in every)
    assert len(every) == 8  # "old"'s reply and the seven messages of o1, o2 and o3
    assert storage.store_messages("default", since=shop.clock.now() + HOUR, limit=5) == []


def test_the_memory_storage_scans(clock: FrozenClock) -> None:
    _scan_contract(MemoryStorage(), clock)


def test_the_sql_storages_scan(sql_store: SQLStorage, clock: FrozenClock) -> None:
    _scan_contract(sql_store, clock)
