"""Relay survivors of mutation testing: a leak path and two remote crashes, pinned.

These assert security properties, not today's header bytes: no real address
of the other side appears in anything delivered (headers, envelope), and
every recipient gets a clean SMTP outcome (2xx or 5xx), never an exception.
The same inputs go through the SMTP server in ``tests/test_server.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from attrs import evolve

from ct_alias import (
    Alias,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    Policy,
    Relay,
    Role,
    StorageError,
    Tracker,
)
from ct_alias.auth import NOT_AUTHENTICATED, Authentication, AuthenticationResults
from ct_alias.mail import HeaderField, split_message
from ct_alias.relay import MAX_HEADER_BYTES, TRACE_HEADER

# made with secrets.token_urlsafe(32)
SIGNING_KEY = "W3pXyv0xkq3l0wW2bB1i7w6l0v1t9l4y2D6HqQx0Q0M"
INDEX_KEY = "T1n3q8Jm0p2y6K0c5z8V3r1b7X4w9d2Q6f0g8h1j3kL"
DOMAIN = "ct.example.com"
CUSTOMER = "maria.silva@example.com.br"
CARRIER = "rastreio@transportadora.example.net"
SECRETARY = "secretaria@transportadora.example.net"
ORDER = "order-1"


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(
        storage=MemoryStorage(),
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)),
        index_key=INDEX_KEY,
    )


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


def message(*headers: bytes) -> bytes:
    return b"\r\n".join(headers) + b"\r\n\r\nHello,\r\nyour parcel is on its way.\r\n"


def delivered(relay: Relay, mail_from: str, alias: Alias, data: bytes) -> bytes:
    """Relay ``data`` to ``alias``; return the delivered bytes, after checking the outcome."""
    (outcome,) = relay.handle(mail_from, [alias.address], data).outcomes
    assert (outcome.code, outcome.status, outcome.accepted) == (250, "2.0.0", True)
    assert outcome.deliver_to == CUSTOMER
    assert outcome.message is not None
    assert outcome.mail_from is not None
    assert outcome.mail_from.endswith("@" + DOMAIN)
    assert split_message(outcome.message).body == split_message(data).body
    return outcome.message


UNMASKABLE = ["a@xn--zz--.com", "nobody@localhost", "reply desk <not an address>"]


@pytest.mark.parametrize("reply_to", UNMASKABLE)
def test_sender_after_a_dropped_reply_to_is_still_masked(
    tracker: Tracker, customer: Alias, reply_to: str
) -> None:
    """Dropping an unmaskable Reply-To must not skip the Sender field after it."""
    data = message(
        f"From: Transportadora <{CARRIER}>".encode(),
        f"Reply-To: {reply_to}".encode(),
        f"Sender: Secretaria <{SECRETARY}>".encode(),
        f"To: {customer.address}".encode(),
        b"Subject: Entrega",
    )
    out = delivered(Relay(tracker), CARRIER, customer, data)
    headers = split_message(out).headers.lower()
    assert SECRETARY.encode() not in headers
    assert CARRIER.encode() not in headers
    assert b"secretaria@" not in out.lower()
    contact = {a.real_address: a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT}
    if SECRETARY in contact:  # masked, if the field is kept at all
        assert contact[SECRETARY].address.encode() in headers


@pytest.mark.parametrize("position", ["before", "after"])
def test_unmaskable_reply_to_never_leaks_a_sender_in_any_order(
    tracker: Tracker, customer: Alias, position: str
) -> None:
    fields = [b"Reply-To: a@xn--zz--.com", f"Sender: {SECRETARY}".encode()]
    if position == "after":
        fields.reverse()
    data = message(
        f"From: {CARRIER}".encode(), *fields, f"To: {customer.address}".encode(), b"Subject: x"
    )
    out = delivered(Relay(tracker), CARRIER, customer, data)
    assert SECRETARY.encode() not in out.lower()


def test_raw_8bit_header_is_a_clean_outcome(tracker: Tracker, customer: Alias) -> None:
    """``X-Note: caf\\xe9`` (Latin-1, not UTF-8) is relayed or refused, never a crash."""
    data = message(
        f"From: Transportadora <{CARRIER}>".encode(),
        b"X-Note: caf\xe9",
        b"Subject: caf\xe9 \xff\xfe",
        f"To: {customer.address}".encode(),
    )
    out = delivered(Relay(tracker), CARRIER, customer, data)
    assert CARRIER.encode() not in out.lower()


def test_raw_8bit_header_mentioning_a_participant_is_scrubbed(
    tracker: Tracker, customer: Alias
) -> None:
    data = message(
        f"From: {CARRIER}".encode(),
        b"X-Note: caf\xe9 " + CARRIER.encode(),
        f"To: {customer.address}".encode(),
    )
    out = delivered(Relay(tracker), CARRIER, customer, data)
    assert CARRIER.encode() not in out.lower()


@pytest.mark.parametrize("field", ["Reply-To", "Sender", "Cc", "X-Original-From"])
def test_invalid_idna_address_is_a_clean_outcome(
    tracker: Tracker, customer: Alias, field: str
) -> None:
    """``xn--zz--`` is not valid punycode: decoding its Unicode spelling must not raise."""
    data = message(
        f"From: {CARRIER}".encode(),
        f"{field}: a@xn--zz--.com".encode(),
        f"To: {customer.address}".encode(),
    )
    out = delivered(Relay(tracker), CARRIER, customer, data)
    assert CARRIER.encode() not in out.lower()


def test_invalid_idna_envelope_sender_is_a_clean_outcome(tracker: Tracker, customer: Alias) -> None:
    data = message(f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())
    (outcome,) = Relay(tracker).handle("a@xn--zz--.com", [customer.address], data).outcomes
    assert 200 <= outcome.code < 300 or 500 <= outcome.code < 600
    if outcome.message is not None:
        assert b"a@xn--zz--.com" not in outcome.message.lower()
        assert CARRIER.encode() not in outcome.message.lower()


# -- who is asked to authenticate, and with what ---------------------------------------

MTA = "mx.ct.example.com"


class Recording:
    """The real ``AuthenticationResults`` authenticator, remembering what it was asked."""

    def __init__(self) -> None:
        self.inner = AuthenticationResults(MTA)
        self.calls: list[tuple[bytes, str]] = []

    def authenticate(
        self, fields: Sequence[HeaderField], data: bytes, *, from_domain: str
    ) -> Authentication:
        self.calls.append((data, from_domain))
        return self.inner.authenticate(fields, data, from_domain=from_domain)


def test_the_authenticator_gets_the_whole_message_and_the_author_domain(
    tracker: Tracker, customer: Alias
) -> None:
    recording = Recording()
    data = message(
        f"Authentication-Results: {MTA}; dmarc=pass header.from={CARRIER.split('@')[1]}".encode(),
        f"From: {CARRIER}".encode(),
        f"To: {customer.address}".encode(),
    )
    (outcome,) = (
        Relay(tracker, authenticator=recording)
        .handle(CARRIER, [customer.address, customer.address.upper()], data)
        .outcomes[:1]
    )
    assert recording.calls == [(data, "transportadora.example.net")]  # once per message
    assert outcome.authentication is not None
    assert outcome.authentication.passed


@pytest.mark.parametrize(
    ("mail_from", "author"),
    [
        ("", "MAILER-DAEMON@mx.example.org"),  # a bounce
        ("<>", "Mail Delivery System <MAILER-DAEMON@mx.example.org>"),
        (CARRIER, "no author at all"),
    ],
)
def test_bounces_and_authorless_mail_are_never_authenticated(
    tracker: Tracker, customer: Alias, mail_from: str, author: str
) -> None:
    recording = Recording()
    data = message(
        f"Authentication-Results: {MTA}; dmarc=pass header.from=mx.example.org".encode(),
        f"From: {author}".encode(),
        f"To: {customer.address}".encode(),
    )
    (outcome,) = (
        Relay(tracker, authenticator=recording).handle(mail_from, [customer.address], data).outcomes
    )
    assert recording.calls == []
    if outcome.accepted:
        assert outcome.authentication == NOT_AUTHENTICATED


def test_mail_from_one_of_our_aliases_is_not_sent_to_the_authenticator(
    tracker: Tracker, customer: Alias
) -> None:
    shop = tracker.mask("vendas@loja.example.com", conversation=ORDER, role=Role.STORE)
    recording = Recording()
    data = message(f"From: {shop.address}".encode(), f"To: {customer.address}".encode())
    (outcome,) = (
        Relay(tracker, authenticator=recording)
        .handle(shop.address, [customer.address], data)
        .outcomes
    )
    assert recording.calls == []
    if outcome.accepted:
        assert outcome.authentication == NOT_AUTHENTICATED


# -- size limits, exactly at and one past ------------------------------------------


def test_a_message_of_exactly_max_size_is_accepted(tracker: Tracker, customer: Alias) -> None:
    head = message(f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())
    relay = Relay(tracker, max_size=len(head) + 100)
    data = head + b"x" * 98 + b"\r\n"
    assert len(data) == relay.max_size
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    (outcome,) = relay.handle(CARRIER, [customer.address], data + b"y").outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")


def test_a_header_block_of_exactly_the_limit_is_read(tracker: Tracker, customer: Alias) -> None:
    top = f"From: {CARRIER}\r\nTo: {customer.address}\r\n".encode()
    filler = MAX_HEADER_BYTES - len(top) - len(b"X-Pad: \r\n")
    headers = top + b"X-Pad: " + b"p" * filler + b"\r\n"
    assert len(headers) == MAX_HEADER_BYTES
    relay = Relay(tracker, max_size=4 * MAX_HEADER_BYTES)
    (outcome,) = relay.handle(CARRIER, [customer.address], headers + b"\r\nHi\r\n").outcomes
    assert outcome.accepted
    over = top + b"X-Pad: " + b"p" * (filler + 1) + b"\r\n"
    (refused,) = relay.handle(CARRIER, [customer.address], over + b"\r\nHi\r\n").outcomes
    assert not refused.accepted
    assert (refused.code, refused.status) != (outcome.code, outcome.status)


# -- only an accepted outcome of handle() can be recorded as delivered or failed ---------


@pytest.mark.parametrize("missing", ["conversation", "store", "direction", "original"])
def test_an_accepted_outcome_missing_a_part_is_refused(
    tracker: Tracker, customer: Alias, missing: str
) -> None:
    relay = Relay(tracker)
    data = message(f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    broken = evolve(outcome, **{missing: None})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        relay.delivered(broken)
    with pytest.raises(InvalidArgument):
        relay.delivery_failed(broken, 550, "5.1.1", permanent=True)
    entry = relay.delivered(outcome)
    assert entry is not None
    assert entry.name == "outbound"


# -- settings at their smallest, and hop counting -------------------------------------


def test_the_smallest_settings_work(tracker: Tracker, customer: Alias) -> None:
    relay = Relay(tracker, max_size=1, max_hops=1)
    assert (relay.max_size, relay.max_hops) == (1, 1)
    data = message(f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    for bad in (0, -1):
        with pytest.raises(InvalidArgument):
            Relay(tracker, max_size=bad)
        with pytest.raises(InvalidArgument):
            Relay(tracker, max_hops=bad)


@pytest.mark.parametrize("max_hops", [1, 2, 3])
def test_hops_are_counted_one_per_trace_field(
    tracker: Tracker, customer: Alias, max_hops: int
) -> None:
    relay = Relay(tracker, max_hops=max_hops)

    def with_hops(hops: int) -> bytes:
        trace = [f"{TRACE_HEADER}: {ORDER}".encode()] * hops
        return message(*trace, f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())

    (below,) = relay.handle(CARRIER, [customer.address], with_hops(max_hops - 1)).outcomes
    assert below.accepted
    (at,) = relay.handle(CARRIER, [customer.address], with_hops(max_hops)).outcomes
    assert (at.code, at.status) == (554, "5.4.6")


# -- storage failing after the alias was read ------------------------------------------


class FailingListing(MemoryStorage):
    """Reads single aliases, but listing a conversation fails (a database going down)."""

    failing = False

    def aliases(self, conversation: str, *, store: str) -> list[Alias]:
        if self.failing:
            raise StorageError("listing aliases", ConnectionError("down"))
        return super().aliases(conversation, store=store)


def test_storage_failing_mid_delivery_is_a_temporary_failure_for_that_recipient() -> None:
    storage = FailingListing()
    tracker = Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)),
        index_key=INDEX_KEY,
    )
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    storage.failing = True
    data = message(f"From: {CARRIER}".encode(), f"To: {customer.address}".encode())
    recipient = f"<{customer.address.upper()}>"
    (outcome,) = Relay(tracker).handle(CARRIER, [recipient], data).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")
    assert outcome.recipient == recipient
    assert outcome.conversation == ORDER
    assert isinstance(outcome.reason, str)
    assert outcome.reason
    assert outcome.reply.startswith("451 4.3.0 ")
