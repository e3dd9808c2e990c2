"""The relay core: routing, header-only rewrite, refusals, recording, hostile input."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from ct_alias import (
    Alias,
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
from ct_alias.relay import TRACE_HEADER, Relay
from ct_alias.testing import FailingStorage

from .conftest import DOMAIN

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mail-parser"
CUSTOMER = "Maria.Silva@example.com.br"
CARRIER = "rastreio@transportadora.example.net"
ORDER = "order-1"


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    t = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    t.set_policy("simple-shop", Policy(domain=DOMAIN, strategy="simple"))
    return t


#: The receiving MTA's authserv-id: the relay trusts its Authentication-Results only.
MTA = "mx.ct.example.com"
UNVERIFIED = f"unverified-sender@{DOMAIN}"


def passed(address: str) -> str:
    """The field the receiving MTA adds when the domain of ``address`` passes DMARC."""
    return f"Authentication-Results: {MTA}; dmarc=pass header.from={address.rpartition('@')[2]}"


@pytest.fixture
def relay(tracker: Tracker) -> Relay:
    return Relay(tracker, authenticator=AuthenticationResults(MTA), max_size=2 * 1024 * 1024)


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


@pytest.fixture
def shop(tracker: Tracker) -> Alias:
    return tracker.mask("vendas@loja.example.com", conversation=ORDER, role=Role.STORE)


def mail(*headers: str, body: bytes = b"Hello,\r\nthis is the body.\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def header_values(message: bytes, name: str) -> list[str]:
    return [
        f.value
        for f in parse_headers(split_message(message).headers)
        if f.name.lower() == name.lower()
    ]


def body_of(message: bytes) -> bytes:
    return split_message(message).body


# -- routing -----------------------------------------------------------------------


def test_carrier_to_customer_gets_a_reverse_alias(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    data = mail(
        passed(CARRIER),
        f"From: Transportadora <{CARRIER}>",
        f"To: {customer.address}",
        "Subject: Entrega",
        "Message-ID: <t1@transportadora.example.net>",
        f"Return-Path: <{CARRIER}>",
    )
    (outcome,) = relay.handle(CARRIER, [customer.address.upper()], data).outcomes
    assert (outcome.code, outcome.status, outcome.accepted) == (250, "2.0.0", True)
    assert outcome.deliver_to == CUSTOMER
    contact = next(a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT)
    assert contact.real_address == CARRIER
    assert tracker.bounced(outcome.mail_from or "").key == customer.key  # reports come home
    assert outcome.conversation == ORDER
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [f"Transportadora <{contact.address}>"]
    assert header_values(outcome.message, TRACE_HEADER) == [ORDER]
    assert header_values(outcome.message, "Subject") == ["Entrega"]
    assert body_of(outcome.message) == body_of(data)
    assert b"transportadora" not in outcome.message  # Return-Path, Message-ID: dropped, replaced
    assert tracker.timeline(ORDER).messages == ()  # recorded once delivered, not before
    relay.delivered(outcome)
    (recorded,) = tracker.timeline(ORDER).messages
    assert recorded.name == "outbound"
    assert recorded.data["from"][0]["ref"] == contact.key


def test_customer_reply_reaches_the_carrier_masked(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    contact = tracker.mask(CARRIER, conversation=ORDER, role=Role.CONTACT)
    data = mail(
        passed(CUSTOMER),
        f"Received: from mx.example.com.br by relay for <{CUSTOMER.lower()}>; Thu, 1 Jan 2026",
        f'From: "Maria Silva" <{CUSTOMER}>',
        f"Reply-To: {CUSTOMER}",
        f"Sender: {CUSTOMER}",
        f"To: Transportadora <{contact.address}>",
        f"Cc: {CUSTOMER}, outsider@elsewhere.example.org",
        f"Disposition-Notification-To: {CUSTOMER}",
        f"X-Original-From: {CUSTOMER.upper()}",
        "Subject: Re: Entrega",
        body=f"On Thursday the carrier wrote to me.\r\n-- \r\nMaria {CUSTOMER}\r\n".encode(),
    )
    (outcome,) = relay.handle(CUSTOMER, [contact.address], data).outcomes
    assert outcome.accepted
    assert outcome.deliver_to == CARRIER
    assert tracker.bounced(outcome.mail_from or "").key == contact.key
    assert outcome.message is not None
    headers = split_message(outcome.message).headers.decode()
    assert CUSTOMER.lower() not in headers.lower()
    assert header_values(outcome.message, "From") == [f"Maria Silva <{customer.address}>"]
    assert header_values(outcome.message, "Reply-To") == [customer.address]
    assert header_values(outcome.message, "Sender") == []  # never delivered
    # an outside address is left out: nobody gets an alias for an address that never wrote
    assert header_values(outcome.message, "Cc") == [customer.address]
    assert header_values(outcome.message, "To") == [f"Transportadora <{contact.address}>"]
    # the body is delivered byte for byte, even where it names the sender
    assert body_of(outcome.message) == body_of(data)
    relay.delivered(outcome)
    (recorded,) = tracker.timeline(ORDER).messages
    assert recorded.name == "inbound"
    assert recorded.data["relay"]["dropped"]["cc"] == 1
    assert recorded.data["authentication"]["verdict"] == "pass"


def test_store_mail_to_customer_uses_the_store_alias(
    relay: Relay, tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    data = mail(
        passed("vendas@loja.example.com"),
        "From: Loja <vendas@loja.example.com>",
        f"To: {customer.address}",
        "Subject: Pedido",
    )
    (outcome,) = relay.handle("vendas@loja.example.com", [customer.address], data).outcomes
    assert outcome.mail_from is not None
    assert tracker.bounced(outcome.mail_from).key == customer.key
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [f"Loja <{shop.address}>"]


def test_display_names_that_carry_an_address_are_dropped(
    relay: Relay, customer: Alias, tracker: Tracker
) -> None:
    data = mail(passed(CARRIER), f'From: "{CARRIER}" <{CARRIER}>', f"To: {customer.address}")
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    contact = next(a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT)
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [contact.address]


def test_simple_aliases_route_too(relay: Relay, tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o2", store="simple-shop")
    assert alias.strategy == "simple"
    data = mail(passed(CARRIER), f"From: {CARRIER}")
    (outcome,) = relay.handle(CARRIER, [alias.address], data).outcomes
    assert outcome.accepted
    contact = next(a for a in tracker.aliases("o2", store="simple-shop") if a.role is Role.CONTACT)
    assert contact.strategy == "simple"
    assert tracker.bounced(outcome.mail_from or "").key == alias.key


def test_recipients_in_several_conversations(relay: Relay, tracker: Tracker) -> None:
    a = tracker.mask(CUSTOMER, conversation="o1")
    b = tracker.mask("joao@example.com", conversation="o2")
    result = relay.handle(
        CARRIER,
        [a.address, b.address, "someone@elsewhere.example.org"],
        mail(passed(CARRIER), f"From: {CARRIER}", f"To: {a.address}, {b.address}"),
    )
    first, second, third = result.outcomes
    assert (first.deliver_to, second.deliver_to) == (CUSTOMER, "joao@example.com")
    assert first.mail_from != second.mail_from  # one reverse alias per conversation
    assert (third.code, third.status) == (550, "5.7.1")
    assert len(result.accepted) == 2
    assert len(result.rejected) == 1


# -- refusals ----------------------------------------------------------------------


def test_not_an_open_relay(relay: Relay, customer: Alias) -> None:
    (outcome,) = relay.handle(CARRIER, ["victim@gmail.example.com"], mail()).outcomes
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    assert outcome.message is None
    assert relay.check_recipient("victim@gmail.example.com") == outcome


@pytest.mark.parametrize(
    "recipient",
    [
        "nobody@" + DOMAIN,
        "1" + "0" * 39 + "@" + DOMAIN,
        "<1" + "v" * 39 + "@" + DOMAIN + ">",
        "maria@example.com-2" + "0" * 23 + "." + DOMAIN,
    ],
)
def test_unknown_malformed_or_forged(
    relay: Relay, recipient: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ct_alias"):
        (outcome,) = relay.handle(CARRIER, [recipient], mail()).outcomes
    assert (outcome.code, outcome.status) == (550, "5.1.1")
    assert caplog.records
    assert "maria@" not in caplog.text
    assert CARRIER not in caplog.text


def test_signed_but_unknown(relay: Relay, clock: FrozenClock) -> None:
    other = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    stranger = other.mask(CUSTOMER, conversation="elsewhere")
    (outcome,) = relay.handle(CARRIER, [stranger.address], mail()).outcomes
    assert (outcome.code, outcome.status) == (550, "5.1.1")


def test_expired_is_refused_and_recorded(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=61))
    (outcome,) = relay.handle(CARRIER, [customer.address], mail(f"From: {CARRIER}")).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert "ttl" in outcome.reason
    (event,) = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-rejected"]
    assert event.data["status"] == "5.2.1"
    assert CARRIER not in str(event.data)


def test_revoked_and_ended(relay: Relay, tracker: Tracker, customer: Alias) -> None:
    tracker.revoke(customer)
    (outcome,) = relay.handle(CARRIER, [customer.address], mail()).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert "revoked" in outcome.reason
    other = tracker.mask("joao@example.com", conversation="o3")
    tracker.end("o3", grace=timedelta(0))
    (outcome,) = relay.handle(CARRIER, [other.address], mail()).outcomes
    assert "ended" in outcome.reason


def test_too_big(tracker: Tracker, customer: Alias) -> None:
    relay = Relay(tracker, max_size=1000)
    (outcome,) = relay.handle(CARRIER, [customer.address], mail(body=b"x" * 2000)).outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    assert [e.name for e in tracker.timeline(ORDER).events][-1] == "delivery-rejected"


def test_loops(relay: Relay, tracker: Tracker, customer: Alias) -> None:
    looping = mail(*[f"{TRACE_HEADER}: {ORDER}"] * 3, f"From: {CARRIER}")
    (outcome,) = relay.handle(CARRIER, [customer.address], looping).outcomes
    assert (outcome.code, outcome.status) == (554, "5.4.6")
    once = mail(f"{TRACE_HEADER}: {ORDER}", f"From: {CARRIER}")
    assert relay.handle(CARRIER, [customer.address], once).outcomes[0].accepted
    # an alias whose "real" address is another alias of ours
    nested = tracker.mask(customer.address, conversation="o9")
    (outcome,) = relay.handle(CARRIER, [nested.address], mail(f"From: {CARRIER}")).outcomes
    assert (outcome.code, outcome.status) == (554, "5.4.6")


def test_storage_down_is_a_temporary_failure(clock: FrozenClock) -> None:
    store = FailingStorage()
    tracker = Tracker(
        storage=store,
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
    )
    alias = tracker.mask(CUSTOMER, conversation=ORDER)
    store.failing.add("get")
    (outcome,) = Relay(tracker).handle(CARRIER, [alias.address], mail()).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")


def test_unreadable_sender_is_shown_unverified(relay: Relay, customer: Alias) -> None:
    data = mail("From: not an address at all", f"To: {customer.address}")
    (outcome,) = relay.handle("also not valid", [customer.address], data).outcomes
    assert outcome.accepted
    assert outcome.mail_from
    assert outcome.mail_from != UNVERIFIED
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [f"Unverified sender <{UNVERIFIED}>"]


# -- bounces -------------------------------------------------------------------


def test_reports_are_consumed_not_relayed(relay: Relay, tracker: Tracker, customer: Alias) -> None:
    dsn = mail(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>",
        f"To: {customer.address}",
        "Subject: Undelivered Mail Returned to Sender",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        "MIME-Version: 1.0",
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--\r\n",
    )
    for sender in ("", "<>"):
        (outcome,) = relay.handle(sender, [customer.address], dsn).outcomes
        assert outcome.accepted
        assert outcome.deliver_to is None  # nothing is relayed
        assert outcome.message is None
        assert relay.delivered(outcome) is None  # nothing to record as a message
    assert tracker.timeline(ORDER).messages == ()
    failures = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-failed"]
    assert [e.data["hard"] for e in failures] == [True, True]
    # no bounce sender became a participant
    assert not [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]


def test_an_auto_reply_is_delivered_and_never_answered(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    reply = mail("From: MAILER-DAEMON", f"To: {customer.address}", "Subject: out of office")
    (outcome,) = relay.handle("", [customer.address], reply).outcomes
    assert outcome.accepted
    assert outcome.mail_from == ""  # a null sender stays null: nothing ever answers it
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [f"Unverified sender <{UNVERIFIED}>"]
    assert not [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]


# -- hostile input -------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        "=?utf-8?q?Evil=0D=0ABcc=3A_victim=40example.org?=",
        "=?utf-8?b?RXZpbA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?=",
        "=?utf-8?q?Evil=0D=0ABcc:_victim@example.org?=",  # not even a valid encoded word
    ],
)
def test_encoded_header_injection_is_neutralised(
    relay: Relay, customer: Alias, tracker: Tracker, encoded: str
) -> None:
    data = mail(f"From: {encoded} <{CARRIER}>", f"To: {customer.address}")
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    if not outcome.accepted:  # refusing is fine; writing it raw is not
        assert (outcome.code, outcome.status) == (550, "5.1.7")
        return
    assert outcome.message is not None
    headers = split_message(outcome.message).headers
    names = [f.name.lower() for f in parse_headers(headers)]
    assert "bcc" not in names
    assert b"\r\nBcc" not in headers
    assert b"victim" not in headers or b"=?" in headers
    for line in headers.split(b"\r\n")[:-1]:
        assert b"\r" not in line
        assert b"\n" not in line


def test_duplicate_from_becomes_one(relay: Relay, customer: Alias) -> None:
    data = mail(f"From: {CARRIER}", "From: second@example.org", f"To: {customer.address}")
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.message is not None
    assert len(header_values(outcome.message, "From")) == 1


def test_no_maskable_sender_is_not_passed_off_as_a_bounce(relay: Relay, customer: Alias) -> None:
    data = mail("Subject: no From at all", f"To: {customer.address}")
    (outcome,) = relay.handle("not an address", [customer.address], data).outcomes
    assert outcome.accepted
    assert outcome.mail_from  # never the null sender of a bounce


def test_missing_headers(relay: Relay, customer: Alias, tracker: Tracker) -> None:
    data = mail("Subject: only a subject")
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    # the envelope sender alone proves nothing: no contact alias for it
    assert not [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]
    assert outcome.mail_from
    assert outcome.mail_from != UNVERIFIED
    assert outcome.message is not None
    assert header_values(outcome.message, "From") == [f"Unverified sender <{UNVERIFIED}>"]
    assert body_of(outcome.message) == body_of(data)


def test_eight_bit_nul_and_long_lines(relay: Relay, customer: Alias) -> None:
    data = (
        f"From: Jos\xe9 <{CARRIER}>\r\nTo: {customer.address}\r\n".encode("latin-1")
        + "Subject: 中文 主题\r\n".encode()
        + b"X-Null: a\x00b\r\nX-Long: "
        + b"y" * 5000
        + b"\r\n\r\n"
        + b"body with \x00 NUL and \xff bytes\r\n"
        + b"z" * 10000
    )
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    assert outcome.message is not None
    assert body_of(outcome.message) == body_of(data)


def test_a_thousand_recipients(relay: Relay, tracker: Tracker, customer: Alias) -> None:
    contact = tracker.mask(CARRIER, conversation=ORDER, role=Role.CONTACT)
    to = ", ".join(f"person{i}@example.org" for i in range(1000))
    data = mail(passed(CUSTOMER), f"From: {CUSTOMER}", f"To: {contact.address}, {to}, {CUSTOMER}")
    (outcome,) = relay.handle(CUSTOMER, [contact.address], data).outcomes
    assert outcome.accepted
    assert outcome.message is not None
    (value,) = header_values(outcome.message, "To")
    # outsiders are left out; the sender's own real address became its alias
    assert value == f"{contact.address}, {customer.address}"
    assert b"example.org" not in outcome.message
    for line in split_message(outcome.message).headers.split(b"\r\n"):
        assert len(line) <= 998  # rewritten fields are folded
    relay.delivered(outcome)
    (recorded,) = tracker.timeline(ORDER).messages
    assert recorded.data["relay"]["dropped"]["to"] == 1000


@pytest.mark.parametrize("data", [b"", b"just a line of text\r\n", b"\xd0\xcf\x11\xe0\xa1\xb1"])
def test_no_header_fields_is_not_an_internet_message(
    relay: Relay, customer: Alias, tracker: Tracker, data: bytes
) -> None:
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (554, "5.6.0")
    assert [e.name for e in tracker.timeline(ORDER).events][-1] == "delivery-rejected"


def test_not_bytes(relay: Relay, customer: Alias) -> None:
    with pytest.raises(InvalidArgument):
        relay.handle(CARRIER, [customer.address], "text")  # type: ignore[arg-type]
    data = bytearray(mail(f"From: {CARRIER}"))
    assert relay.handle(CARRIER, [customer.address], data).outcomes[0].accepted


def test_bad_settings(tracker: Tracker) -> None:
    with pytest.raises(InvalidArgument):
        Relay(tracker, max_size=0)
    with pytest.raises(InvalidArgument):
        Relay(tracker, max_hops=0)


def test_order_events_do_not_disturb_routing(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    tracker.record_event(ORDER, OrderEvent.DISPATCHED)
    assert relay.handle(CARRIER, [customer.address], mail(f"From: {CARRIER}")).outcomes[0].accepted


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
@pytest.mark.parametrize(
    "path",
    sorted(p for p in CORPUS.glob("*") if p.suffix in {".eml", ".msg"}) if CORPUS.is_dir() else [],
    ids=lambda p: p.name,
)
def test_corpus(tracker: Tracker, path: Path) -> None:
    relay = Relay(tracker, max_size=2 * 1024 * 1024)
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    data = path.read_bytes()
    (outcome,) = relay.handle(CARRIER, [customer.address], data).outcomes
    assert outcome.code in {250, 550, 554}, outcome
    if path.suffix == ".msg":  # an Outlook binary file, not RFC 5322
        assert (outcome.code, outcome.status) == (554, "5.6.0")
    assert outcome.reason
    if outcome.accepted:
        assert outcome.message is not None
        assert body_of(outcome.message) == body_of(data)
        headers = split_message(outcome.message).headers
        assert CARRIER.encode() not in headers
        relay.delivered(outcome)
        assert tracker.timeline(ORDER).messages
    else:
        assert [e.name for e in tracker.timeline(ORDER).events][-1] == "delivery-rejected"


def test_rcpt_time_refusals_are_recorded(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=61))
    outcome = relay.check_recipient(customer.address)
    assert outcome is not None
    assert outcome.status == "5.2.1"
    (event,) = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-rejected"]
    assert event.data["stage"] == "rcpt"


def test_a_record_the_relay_cannot_open_is_a_temporary_failure(clock: FrozenClock) -> None:
    store = MemoryStorage()
    sealed = Tracker(
        storage=store,
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
        address_keys=["SYDx83anjgp3uVAbziKk8rm7TzcgXika5q-aulYZ5Cc"],
    )
    alias = sealed.mask(CUSTOMER, conversation=ORDER)
    other_keys = Tracker(
        storage=store,
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
        address_keys=["ohxh7rVYws5vFm6dyOUvvH11e5Oayq8EVbDljQQmvlg"],
    )
    relay = Relay(other_keys)
    (outcome,) = relay.handle(CARRIER, [alias.address], mail(f"From: {CARRIER}")).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")
    assert relay.check_recipient(alias.address) is not None
