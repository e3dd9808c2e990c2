"""Conversation rules through Relay.handle: state, blocked senders, windows, rate caps, opt-out.

Each rule is shown refusing what it must (with its SMTP answer and a reason a
person can read, on the timeline and in the HTML timeline) and letting through
what it must not refuse.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ct_alias import (
    Alias,
    ConfigurationError,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    OrderEvent,
    Policy,
    Role,
    Tracker,
)
from ct_alias.auth import AuthenticationResults
from ct_alias.mail import parse_headers, split_message
from ct_alias.policy import Window
from ct_alias.relay import Outcome, Relay
from ct_alias.rules import Rule
from ct_alias.storage import EntryCount
from ct_alias.storage.sql import SQLStorage
from ct_alias.timeline import Direction, TimelineEntry
from ct_alias.vocabulary import ConversationState, RuleEvent

from .conftest import DOMAIN

# generated with `ct-alias keys generate` for these tests only
SIGNING_KEY = "Zr1m0H5b3kV9qW2xT7nC4yL8pD6sF0gJ2aE5uK9iR3o"
INDEX_KEY = "bQ7xN2cV5mK8jH1gF4dS9aP6oI3uY0tR7eW2qZ5lX8c"
ADDRESS_KEY = "WoZP3l2aCPgeP_c2wAlwrbsYWXOT3lLHyGHljoFmP1g"
MTA = "mx.ct.example.com"
ORDER = "1001"
CUSTOMER = "maria@example.com.br"
STORE = "vendas@loja.example.com"
SUPPORT = "ajuda@loja.example.com"
CARRIER = "rastreio@transportadora.example.net"
OTHER = "marketplace@market.example.org"


def passed(address: str) -> str:
    return f"Authentication-Results: {MTA}; dmarc=pass header.from={address.rpartition('@')[2]}"


_IDS = itertools.count()


def mail(sender: str, to: str, *extra: str, mid: str | None = None) -> bytes:
    """A message authenticated for ``sender``'s domain, with its own Message-ID."""
    mid = mid or f"m{next(_IDS)}@{sender.rpartition('@')[2]}"
    headers = [passed(sender), f"From: {sender}", f"To: {to}", "Subject: about the order"]
    headers.append(f"Message-ID: <{mid}>")
    return ("\r\n".join([*headers, *extra]) + "\r\n\r\nHello.\r\n").encode()


def send(relay: Relay, sender: str, to: Alias, *extra: str, mid: str | None = None) -> Outcome:
    """One message through Relay.handle; an accepted one is handed off and recorded."""
    data = mail(sender, to.address, *extra, mid=mid)
    (outcome,) = relay.handle(sender, [to.address], data).outcomes
    if outcome.accepted:
        relay.delivered(outcome)
    return outcome


def rejections(tracker: Tracker, conversation: str = ORDER) -> list[dict[str, Any]]:
    return [
        dict(e.data)
        for e in tracker.timeline(conversation, store="shop").events
        if e.name == "delivery-rejected"
    ]


def message_id(message: bytes | None) -> str:
    assert message is not None
    fields = parse_headers(split_message(message).headers)
    return next(f.value for f in fields if f.name.lower() == "message-id")


class CountingStorage(MemoryStorage):
    """A memory storage that counts timeline reads (to show what a rule reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, object]] = []

    def entries(self, conversation: str, **kwargs: Any) -> list[TimelineEntry]:
        self.reads.append((conversation, kwargs.get("after")))
        return super().entries(conversation, **kwargs)


class CountingSQLStorage(SQLStorage):
    """A SQLite storage that counts the rules' timeline reads (its cheaper ``rule_entries``)."""

    def __init__(self, url: str, *, sealed: bool) -> None:
        super().__init__(url)
        self.reads: list[tuple[str, object]] = []
        self.sealed = sealed  # the tracker seals messages' texts with an address key

    def rule_entries(self, conversation: str, **kwargs: Any) -> list[TimelineEntry]:
        self.reads.append((conversation, kwargs.get("after")))
        return super().rule_entries(conversation, **kwargs)


Counting = CountingStorage | CountingSQLStorage


@pytest.fixture(params=["memory", "sqlite", "sqlite-sealed"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counting]:
    """Every rule on the memory storage, and on SQLite (which reads a message's id only)."""
    if request.param == "memory":
        yield CountingStorage()
        return
    found = CountingSQLStorage(
        f"sqlite:///{tmp_path / 'rules.db'}", sealed="sealed" in request.param
    )
    found.upgrade()
    yield found
    found.close()


@pytest.fixture
def tracker(clock: FrozenClock, storage: Counting) -> Tracker:
    return _tracker(clock, storage)


def _tracker(clock: FrozenClock, storage: Counting) -> Tracker:
    sealed = isinstance(storage, CountingSQLStorage) and storage.sealed
    t = Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
        address_keys=[ADDRESS_KEY] if sealed else None,
    )
    t.set_policy("shop", Policy(domain=DOMAIN, conversation_rules=True, support_address=SUPPORT))
    return t


@pytest.fixture
def relay(tracker: Tracker) -> Relay:
    return Relay(tracker, authenticator=AuthenticationResults(MTA))


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER, store="shop")


@pytest.fixture
def store(tracker: Tracker) -> Alias:
    return tracker.mask(STORE, conversation=ORDER, store="shop", role=Role.STORE)


@pytest.fixture
def support(tracker: Tracker) -> Alias:
    return tracker.mask(SUPPORT, conversation=ORDER, store="shop", role=Role.STORE)


def with_policy(tracker: Tracker, **fields: Any) -> None:
    tracker.set_policy("shop", Policy(domain=DOMAIN, **fields))


# -- cost ------------------------------------------------------------------------------


def test_a_store_without_rules_reads_nothing_for_them(
    tracker: Tracker, relay: Relay, storage: Counting, customer: Alias
) -> None:
    with_policy(tracker)
    storage.reads.clear()
    assert send(relay, CARRIER, customer).accepted
    assert storage.reads == []  # the relay read no timeline for rules (nor for anything else)


def test_rules_read_only_what_was_recorded_since(
    tracker: Tracker, relay: Relay, storage: Counting, customer: Alias, clock: FrozenClock
) -> None:
    for _ in range(3):
        assert send(relay, CARRIER, customer).accepted
        clock.advance(timedelta(minutes=1))
    storage.reads.clear()
    assert send(relay, CARRIER, customer).accepted
    ((conversation, after),) = storage.reads
    assert conversation == ORDER
    assert after is not None  # after the fold's position: only the newest entries


def test_after_six_hours_an_unchanged_timeline_is_counted_not_read_again(
    tracker: Tracker, relay: Relay, storage: Counting, customer: Alias, clock: FrozenClock
) -> None:
    for _ in range(3):
        assert send(relay, CARRIER, customer).accepted
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(hours=6))
    storage.reads.clear()
    assert send(relay, CARRIER, customer).accepted
    # read on from the fold's position; the count matched the entries folded: no whole read
    assert [after is not None for _, after in storage.reads] == [True]


class _UncountedMemory(CountingStorage):
    """A storage without :class:`EntryCount` (``None`` hides the method from ``isinstance``)."""

    entry_count = None  # type: ignore[assignment]


class _UncountedSQL(CountingSQLStorage):
    """A SQL storage without :class:`EntryCount`."""

    entry_count = None  # type: ignore[assignment]


@pytest.mark.parametrize("cls", [_UncountedMemory, _UncountedSQL])
def test_a_storage_that_cannot_count_is_read_again_whole_after_six_hours(
    cls: type[Counting], clock: FrozenClock, tmp_path: Path
) -> None:
    storage: Counting
    if cls is _UncountedSQL:
        storage = _UncountedSQL(f"sqlite:///{tmp_path / 'rules.db'}", sealed=False)
        storage.upgrade()
    else:
        storage = _UncountedMemory()
    probe: object = storage
    assert not isinstance(probe, EntryCount)
    tracker = _tracker(clock, storage)
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    with_policy(tracker, to_customer_window=Window("delivered", timedelta(days=1)))
    customer = tracker.mask(CUSTOMER, conversation=ORDER, store="shop")
    tracker.mask(STORE, conversation=ORDER, store="shop", role=Role.STORE)
    clock.advance(timedelta(days=3))
    assert send(relay, STORE, customer).accepted
    tracker.record_event(ORDER, "canceled", store="shop")
    clock.advance(timedelta(hours=2))
    assert send(relay, STORE, customer).accepted
    tracker.record_event(ORDER, "delivered", store="shop", at=clock.now() - timedelta(days=2))
    assert send(relay, STORE, customer).accepted  # two days back: not read on
    clock.advance(timedelta(hours=6))
    storage.reads.clear()
    assert send(relay, STORE, customer).code == 550  # read again whole
    assert [after for _, after in storage.reads] == [None]


# -- state ------------------------------------------------------------------------------


def test_a_closed_conversation_relays_nothing(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, support: Alias
) -> None:
    entry = tracker.set_state(ORDER, ConversationState.CLOSED, store="shop", reason="order done")
    assert entry.name == RuleEvent.STATE_CHANGED
    assert entry.data == {"state": "closed", "reason": "order done"}
    for sender, to in ((CUSTOMER, store), (STORE, customer), (SUPPORT, customer)):
        outcome = send(relay, sender, to)
        assert (outcome.code, outcome.status) == (550, "5.7.1")
        assert "closed" in outcome.reason
        assert "order done" not in outcome.reason  # the host's reason stays on the timeline
    assert {r["rule"] for r in rejections(tracker)} == {Rule.CLOSED}
    assert tracker.conversation_rules(ORDER, store="shop").state is ConversationState.CLOSED

    tracker.set_state(ORDER, "open", store="shop")
    assert send(relay, STORE, customer).accepted


def test_on_hold_relays_only_to_and_from_support(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, support: Alias
) -> None:
    tracker.set_state(ORDER, "on_hold", store="shop", reason="dispute 77")
    assert send(relay, CUSTOMER, support).accepted  # to support
    assert send(relay, SUPPORT, customer).accepted  # from support
    refused = [send(relay, CUSTOMER, store), send(relay, STORE, customer)]
    refused.append(send(relay, CARRIER, customer))
    for outcome in refused:
        assert (outcome.code, outcome.status) == (550, "5.7.1")
        assert "on hold" in outcome.reason
    assert [r["rule"] for r in rejections(tracker)] == [Rule.ON_HOLD] * 3
    rules = tracker.conversation_rules(ORDER, store="shop")
    assert (rules.state, rules.state_reason) == (ConversationState.ON_HOLD, "dispute 77")


def test_on_hold_without_a_support_address_relays_nothing(
    tracker: Tracker, relay: Relay, customer: Alias, support: Alias
) -> None:
    with_policy(tracker, conversation_rules=True)
    tracker.set_state(ORDER, "on_hold", store="shop")
    assert send(relay, CUSTOMER, support).code == 550


def test_states_and_blocks_need_the_policy_switch(tracker: Tracker, customer: Alias) -> None:
    with_policy(tracker)
    with pytest.raises(ConfigurationError, match="conversation_rules"):
        tracker.set_state(ORDER, "closed", store="shop")
    with pytest.raises(ConfigurationError, match="conversation_rules"):
        tracker.block(ORDER, customer, store="shop")


def test_a_bad_state_is_refused(tracker: Tracker) -> None:
    with pytest.raises(InvalidArgument, match="on_hold"):
        tracker.set_state(ORDER, "paused", store="shop")


# -- blocked senders --------------------------------------------------------------------


def test_a_blocked_sender_is_refused_in_that_conversation_only(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias
) -> None:
    assert send(relay, CARRIER, customer).accepted
    carrier = next(a for a in tracker.aliases(ORDER, store="shop") if a.role is Role.CONTACT)
    elsewhere = tracker.mask(CUSTOMER, conversation="2002", store="shop")

    entry = tracker.block(ORDER, carrier.address, store="shop", reason="spam")
    assert entry.data["ref"] == carrier.key
    outcome = send(relay, CARRIER, customer)
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    assert outcome.reason == "this sender was blocked in this conversation"
    assert send(relay, STORE, customer).accepted  # others still write
    assert send(relay, CARRIER, elsewhere).accepted  # another conversation: not blocked
    (refusal,) = rejections(tracker)
    assert refusal["rule"] == Rule.BLOCKED
    assert refusal["reason"] == outcome.reason

    tracker.unblock(ORDER, carrier, store="shop")
    assert send(relay, CARRIER, customer).accepted
    names = [e.name for e in tracker.timeline(ORDER, store="shop").events]
    assert names.count(RuleEvent.SENDER_BLOCKED) == names.count(RuleEvent.SENDER_UNBLOCKED) == 1


def test_a_blocked_sender_is_refused_unauthenticated_too(
    tracker: Tracker, relay: Relay, customer: Alias
) -> None:
    """Mail claiming a blocked sender's address is refused even when it does not authenticate.

    Otherwise a blocked sender would only have to send without DKIM/SPF to be
    relayed again (as an unverified sender).
    """
    assert send(relay, CARRIER, customer).accepted
    carrier = next(a for a in tracker.aliases(ORDER, store="shop") if a.role is Role.CONTACT)
    tracker.block(ORDER, carrier, store="shop")

    def unauthenticated(author: str) -> Outcome:
        data = mail(author, customer.address).split(b"\r\n", 1)[1]  # no Authentication-Results
        (outcome,) = relay.handle(author, [customer.address], data).outcomes
        return outcome

    outcome = unauthenticated(CARRIER.upper())
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    assert outcome.reason == "this sender was blocked in this conversation"
    assert unauthenticated(OTHER).accepted  # another unverified sender still gets through
    tracker.unblock(ORDER, carrier, store="shop")
    assert unauthenticated(CARRIER).accepted


def test_block_what_the_customer_clicked(
    tracker: Tracker, relay: Relay, customer: Alias, clock: FrozenClock
) -> None:
    assert send(relay, CARRIER, customer).accepted
    assert send(relay, OTHER, customer).accepted
    clicked = tracker.timeline(ORDER, store="shop").messages[1]  # the marketplace's message
    tracker.block(ORDER, clicked, store="shop")
    assert send(relay, OTHER, customer).code == 550
    assert send(relay, CARRIER, customer).accepted


def test_a_block_outlives_the_alias_it_named(
    tracker: Tracker, relay: Relay, customer: Alias, clock: FrozenClock
) -> None:
    assert send(relay, CARRIER, customer).accepted
    carrier = next(a for a in tracker.aliases(ORDER, store="shop") if a.role is Role.CONTACT)
    tracker.block(ORDER, carrier, store="shop")
    clock.advance(timedelta(days=61))  # every alias expired: a fresh pair
    fresh = tracker.mask(CUSTOMER, conversation=ORDER, store="shop")
    assert send(relay, CARRIER, fresh).code == 550
    contacts = [a for a in tracker.aliases(ORDER, store="shop") if a.role is Role.CONTACT]
    assert len(contacts) == 2  # shown under a new alias, still the blocked sender


def test_block_names_a_participant_of_the_conversation(
    tracker: Tracker, relay: Relay, customer: Alias
) -> None:
    stranger = tracker.mask(OTHER, conversation="2002", store="shop", role=Role.CONTACT)
    with pytest.raises(InvalidArgument, match="participant"):
        tracker.block(ORDER, stranger, store="shop")
    with pytest.raises(InvalidArgument, match="not one of"):
        tracker.block(ORDER, "nobody@example.org", store="shop")
    unverified = mail(CARRIER, customer.address).replace(b"dmarc=pass", b"dmarc=fail")
    (outcome,) = relay.handle(CARRIER, [customer.address], unverified).outcomes
    relay.delivered(outcome)
    message = tracker.timeline(ORDER, store="shop").messages[-1]
    with pytest.raises(InvalidArgument, match="not verified"):
        tracker.block(ORDER, message, store="shop")


# -- windows ----------------------------------------------------------------------------


def test_the_store_may_start_messages_only_within_the_window(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, to_customer_window=Window("delivered", timedelta(days=30)))
    assert send(relay, STORE, customer).accepted  # before delivery: open
    tracker.record_event(ORDER, OrderEvent.DELIVERED, store="shop")
    clock.advance(timedelta(days=29))
    assert send(relay, STORE, customer).accepted
    clock.advance(timedelta(days=1))
    late = send(relay, STORE, customer)
    assert (late.code, late.status) == (550, "5.7.1")
    assert late.reason == (
        "new messages to the customer are allowed only within 30 days after delivered: "
        "reply to one of the customer's messages instead"
    )
    assert send(relay, CARRIER, customer).code == 550  # anyone starting, not only the store

    # the customer may always write, and the store may answer her
    asked = send(relay, CUSTOMER, store, mid="q1@example.com.br")
    assert asked.accepted
    seen_by_store = message_id(asked.message)
    answer = send(relay, STORE, customer, f"In-Reply-To: {seen_by_store}")
    assert answer.accepted
    assert send(relay, STORE, customer, "In-Reply-To: <made-up@loja.example.com>").code == 550
    assert [r["rule"] for r in rejections(tracker)] == [Rule.WINDOW] * 2  # once per sender alias


def test_a_window_on_the_customer_side(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, from_customer_window=Window("canceled", timedelta(hours=12)))
    tracker.record_event(ORDER, OrderEvent.CANCELED, store="shop")
    clock.advance(timedelta(hours=13))
    refused = send(relay, CUSTOMER, store)
    assert refused.code == 550
    assert "within 12 hours after canceled" in refused.reason
    told = send(relay, STORE, customer, mid="n1@loja.example.com")
    assert told.accepted  # the store may still write (no window on its side)
    reply = send(relay, CUSTOMER, store, f"References: {message_id(told.message)}")
    assert reply.accepted


# -- rate caps --------------------------------------------------------------------------


def test_a_rate_cap_answers_450_and_records_once_per_window(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, to_customer_per_hour=2)
    assert send(relay, STORE, customer).accepted
    clock.advance(timedelta(minutes=10))
    assert send(relay, STORE, customer).accepted
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        refused = send(relay, STORE, customer)
        assert (refused.code, refused.status) == (450, "4.7.1")
        assert "at most 2 an hour" in refused.reason
        assert "01:00 UTC" in refused.reason  # when the first of the two is an hour old
    assert send(relay, CUSTOMER, store).accepted  # the other direction has no cap
    assert len(rejections(tracker)) == 1

    clock.advance(timedelta(minutes=40))  # the first message is now more than an hour old
    assert send(relay, STORE, customer).accepted
    assert send(relay, STORE, customer).code == 450  # a new window
    windows = rejections(tracker)
    assert [w["rule"] for w in windows] == [Rule.RATE, Rule.RATE]
    assert windows[0]["code"] == 450


def test_a_rate_cap_is_recorded_once_across_relays(
    tracker: Tracker, customer: Alias, store: Alias
) -> None:
    with_policy(tracker, from_customer_per_hour=1)
    first, second = (Relay(tracker, authenticator=AuthenticationResults(MTA)) for _ in "ab")
    assert send(first, CUSTOMER, store).accepted
    assert send(first, CUSTOMER, store).code == 450
    assert send(second, CUSTOMER, store).code == 450  # another process's relay
    assert len(rejections(tracker)) == 1


# -- opt-out ----------------------------------------------------------------------------


def notify(tracker: Tracker, *, critical: bool = False) -> EmailMessage | None:
    return tracker.notify(
        ORDER,
        "review-request" if not critical else OrderEvent.DISPATCHED,
        subject="How was it?",
        text="Tell us.",
        store="shop",
        critical=critical,
    )


def test_a_non_critical_message_offers_a_signed_unsubscribe_address(
    tracker: Tracker, customer: Alias, store: Alias
) -> None:
    message = notify(tracker)
    assert message is not None
    (uri,) = [u.strip("<> ") for u in message["List-Unsubscribe"].split(",")]
    assert uri.startswith("mailto:")
    assert uri.endswith(f"@{DOMAIN}?subject=unsubscribe")
    assert CUSTOMER.split("@", maxsplit=1)[0] not in uri
    assert message["List-Unsubscribe-Post"] is None  # never without an https URI
    critical = notify(tracker, critical=True)
    assert critical is not None
    assert critical["List-Unsubscribe"] is None


def test_one_click_needs_the_hosts_https_endpoint(
    tracker: Tracker, customer: Alias, store: Alias
) -> None:
    with_policy(tracker, unsubscribe_url="https://loja.example.com/unsubscribe/{token}")
    message = notify(tracker)
    assert message is not None
    https, mailto = (u.strip("<> ") for u in message["List-Unsubscribe"].split(","))
    assert https.startswith("https://loja.example.com/unsubscribe/")
    assert mailto.startswith("mailto:")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = https.rpartition("/")[2]
    assert mailto.startswith(f"mailto:{token}@")

    entry = tracker.unsubscribe(token)  # what the host's endpoint does
    assert (entry.name, entry.data) == (RuleEvent.OPTED_OUT, {"via": "link"})
    assert tracker.opted_out(ORDER, store="shop")


def test_http_templates_are_refused() -> None:
    for bad in ("http://loja.example.com/u/{token}", "https://loja.example.com/u", "ftp://{token}"):
        with pytest.raises(ConfigurationError, match="https"):
            Policy(domain=DOMAIN, unsubscribe_url=bad)


def test_opting_out_by_mail_suppresses_non_critical_messages_only(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias
) -> None:
    message = notify(tracker)
    assert message is not None
    address = message["List-Unsubscribe"].strip("<>").removeprefix("mailto:").split("?")[0]
    (outcome,) = relay.handle(CUSTOMER, [address], mail(CUSTOMER, address)).outcomes
    assert outcome.accepted
    assert outcome.deliver_to is None  # nothing is relayed
    assert relay.delivered(outcome) is None
    (again,) = relay.handle(CUSTOMER, [address.upper()], mail(CUSTOMER, address)).outcomes
    assert again.accepted

    assert notify(tracker) is None
    assert notify(tracker, critical=True) is not None  # an order step always goes
    timeline = tracker.timeline(ORDER, store="shop")
    opted = [e for e in timeline.events if e.name == RuleEvent.OPTED_OUT]
    assert [e.data for e in opted] == [{"via": "mail"}]  # recorded once
    (suppressed,) = [e for e in timeline.events if e.name == RuleEvent.NOTIFICATION_SUPPRESSED]
    assert suppressed.data["event"] == "review-request"
    outbound = [m for m in timeline.messages if m.name == Direction.OUTBOUND]
    assert len(outbound) == 2  # the first notice and the critical one, not the suppressed


def test_forged_and_expired_unsubscribe_addresses_are_refused(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    address = tracker.unsubscribe_address(customer)
    assert address is not None
    forged = ("4" + ("a" if address[1] != "a" else "b") + address[2:]).lower()
    for target in (forged, f"{address.partition('@')[0]}@other.example.com"):
        (outcome,) = relay.handle(CUSTOMER, [target], mail(CUSTOMER, target)).outcomes
        assert not outcome.accepted
    clock.advance(timedelta(days=91))
    (outcome,) = relay.handle(CUSTOMER, [address], mail(CUSTOMER, address)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.1.1")
    assert not tracker.opted_out(ORDER, store="shop")


def test_the_host_may_opt_the_customer_out(tracker: Tracker, customer: Alias, store: Alias) -> None:
    tracker.opt_out(ORDER, store="shop")
    tracker.opt_out(ORDER, store="shop")
    assert notify(tracker) is None
    opted = [e for e in tracker.timeline(ORDER, store="shop").events if e.name == "opted-out"]
    assert [e.data for e in opted] == [{"via": "host"}]


def test_order_steps_cannot_be_marked_non_critical(
    tracker: Tracker, customer: Alias, store: Alias
) -> None:
    with pytest.raises(InvalidArgument, match="order step"):
        tracker.notify(
            ORDER, OrderEvent.INVOICED, subject="s", text="t", store="shop", critical=False
        )


# -- the HTML timeline ------------------------------------------------------------------


def test_every_refusal_and_rule_is_in_the_html_timeline(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias
) -> None:
    assert send(relay, CARRIER, customer).accepted
    carrier = next(a for a in tracker.aliases(ORDER, store="shop") if a.role is Role.CONTACT)
    tracker.block(ORDER, carrier, store="shop")
    send(relay, CARRIER, customer)
    tracker.set_state(ORDER, "closed", store="shop", reason="refund <done>")
    send(relay, STORE, customer)
    tracker.opt_out(ORDER, store="shop")
    html = tracker.timeline(ORDER, store="shop").to_html()
    assert "sender blocked" in html
    assert "this sender was blocked in this conversation" in html
    assert "conversation state" in html
    assert "refund &lt;done&gt;" in html
    assert "this conversation is closed: no more mail is relayed" in html
    assert "opted out of non-critical messages" in html
    assert html.count("delivery rejected") == 2
    assert carrier.key not in html.replace(f'"{carrier.key}"', "")  # no slot or ref shown raw


# -- how the fold reads -----------------------------------------------------------------


def test_an_event_recorded_a_little_back_dated_is_seen_at_once(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, to_customer_window=Window("delivered", timedelta(minutes=5)))
    clock.advance(timedelta(days=2))
    assert send(relay, STORE, customer).accepted
    assert send(relay, STORE, customer).accepted  # the fold's newest entry is the first, now
    # a carrier's webhook, late: delivered ten minutes ago, recorded now
    tracker.record_event(ORDER, "delivered", store="shop", at=clock.now() - timedelta(minutes=10))
    assert send(relay, STORE, customer).code == 550


def test_an_event_back_dated_further_is_seen_when_the_fold_is_read_again(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, to_customer_window=Window("delivered", timedelta(days=1)))
    clock.advance(timedelta(days=3))
    assert send(relay, STORE, customer).accepted
    tracker.record_event(ORDER, "canceled", store="shop")
    clock.advance(timedelta(hours=2))
    assert send(relay, STORE, customer).accepted  # the fold's newest entry is now
    tracker.record_event(ORDER, "delivered", store="shop", at=clock.now() - timedelta(days=2))
    assert send(relay, STORE, customer).accepted  # two days back: not read on
    clock.advance(timedelta(hours=6))
    assert send(relay, STORE, customer).code == 550  # read again whole


def test_entries_read_again_are_folded_once(
    tracker: Tracker, relay: Relay, customer: Alias, store: Alias, clock: FrozenClock
) -> None:
    with_policy(tracker, to_customer_per_hour=3)
    for _ in range(2):
        assert send(relay, STORE, customer).accepted
        clock.advance(timedelta(minutes=1))
        assert tracker.conversation_rules(ORDER, store="shop").state is ConversationState.OPEN
    assert send(relay, STORE, customer).accepted  # the third of three: not counted twice
    assert send(relay, STORE, customer).code == 450
