"""Relay survivors of mutation testing: a leak path and two remote crashes, pinned.

These assert security properties, not today's header bytes: no real address
of the other side appears in anything delivered (headers, envelope), and
every recipient gets a clean SMTP outcome (2xx or 5xx), never an exception.
The same inputs go through the SMTP server in ``tests/test_server.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ct_alias import Alias, FrozenClock, MemoryStorage, Policy, Relay, Role, Tracker
from ct_alias.mail import split_message

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
