"""Bounce addresses and delivery reports: failures come home, addresses never leak."""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest

from ct_alias import Alias, FrozenClock, MemoryStorage, Policy, Role, Tracker
from ct_alias._outcomes import strip_brackets
from ct_alias._returns import count_hard_bounce
from ct_alias.auth import AuthenticationResults
from ct_alias.bounces import (
    BOUNCE_TTL,
    BOUNCE_V1,
    looks_like_bounce_address,
    make_bounce_address,
    read_bounce_address,
)
from ct_alias.codec import AliasCodec
from ct_alias.errors import ExpiredAlias, ForgedAlias, MalformedAlias
from ct_alias.mail import parse_headers, read_report, split_message
from ct_alias.relay import Relay, RelayResult
from ct_alias.testing import FailingStorage

from .conftest import DOMAIN

# generated with `ct-alias keys generate` for these tests only
SIGNING_KEY = "Jd8mQ2vX5nR1tK7yB4wL9pF3hC6gA0sE2uZ8oI5qN1r"
INDEX_KEY = "Vb3nK8xW1qT6yM2rF9jL4hD7gS0pC5aZ3uE8oI1wN6t"
ADDRESS_KEY = "Hq7wE2rT9yU4iO1pA6sD3fG8hJ5kL0zX2cV7bN4mQ9w"
MTA = "mx.ct.example.com"
ORDER = "1001"
CUSTOMER = "maria.silva@example.com.br"
CARRIER = "rastreio@transportadora.example.net"


def make(clock: FrozenClock, storage: MemoryStorage | None = None, **keys: object) -> Tracker:
    return Tracker(
        storage=storage if storage is not None else MemoryStorage(),
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
        **keys,  # type: ignore[arg-type]
    )


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make(clock)


@pytest.fixture
def relay(tracker: Tracker) -> Relay:
    return Relay(tracker, authenticator=AuthenticationResults(MTA))


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


def deliver(relay: Relay, sender: str, recipients: list[str], data: bytes) -> RelayResult:
    result = relay.handle(sender, recipients, data)
    for outcome in result.accepted:
        relay.delivered(outcome)
    return result


def carrier_mail(customer: Alias) -> bytes:
    return (
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"
        f"From: Transportadora <{CARRIER}>\r\nTo: {customer.address}\r\nSubject: Entrega\r\n"
        "Message-ID: <t1@transportadora.example.net>\r\n\r\nAmanha.\r\n"
    ).encode()


def dsn(bounce: str, delivered: bytes, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A Postfix-style delivery report about ``delivered``, quoting the real recipient."""
    headers = split_message(delivered).headers.decode("utf-8", "replace")
    return (
        "From: MAILER-DAEMON@mx.example.com.br (Mail Delivery System)\r\n"
        f"To: {bounce}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\n"
        f"I could not deliver to <{CUSTOMER}>: mailbox unknown.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com.br\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nOriginal-Recipient: rfc822; {CUSTOMER}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{CUSTOMER}>: user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}"
        "--B--\r\n"
    ).encode()


# -- the address ---------------------------------------------------------------------


def test_known_answer() -> None:
    codec = AliasCodec([SIGNING_KEY])
    at = datetime(2026, 1, 1, tzinfo=UTC)
    address = make_bounce_address(codec, "00112233445566778899aabbccddeeff", DOMAIN, at)
    assert address == ("300128hj8hamcts8j6lbnj6ttrvminnjg3vnrp3bakjuos8m@ct.example.com")
    assert read_bounce_address(codec, address, DOMAIN) == (
        "00112233445566778899aabbccddeeff",
        at + BOUNCE_TTL,
    )
    assert len(address.partition("@")[0]) == BOUNCE_V1.length == 48


def test_forged_moved_and_expired_are_refused_without_storage(
    tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    bounce = tracker.bounce_address(customer)
    assert bounce is not None
    assert tracker.bounced(bounce.upper()).key == customer.key
    local, _, domain = bounce.partition("@")
    flipped = local[:10] + ("0" if local[10] != "0" else "1") + local[11:]
    with pytest.raises(ForgedAlias):
        tracker.bounced(f"{flipped}@{domain}")
    other = make(clock)
    other.set_policy("x", Policy(domain="ct2.example.com"))
    with pytest.raises(ForgedAlias):  # bound to its domain: cannot be moved to another
        other.bounced(f"{local}@ct2.example.com")
    with pytest.raises(MalformedAlias):
        tracker.bounced(customer.address)
    clock.advance(BOUNCE_TTL)
    with pytest.raises(ExpiredAlias):
        tracker.bounced(bounce)


def test_every_relayed_message_leaves_with_its_bounce_address(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    (outcome,) = deliver(relay, CARRIER, [customer.address], carrier_mail(customer)).outcomes
    assert outcome.mail_from is not None
    assert tracker.bounced(outcome.mail_from).key == customer.key
    assert relay.check_recipient(outcome.mail_from) is None


# -- reports come home ---------------------------------------------------------------


def relayed(relay: Relay, customer: Alias) -> tuple[str, bytes]:
    (outcome,) = deliver(relay, CARRIER, [customer.address], carrier_mail(customer)).outcomes
    assert outcome.mail_from is not None
    assert outcome.message is not None
    return outcome.mail_from, outcome.message


def test_a_report_is_recorded_and_the_sender_told_only_the_alias(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    bounce, delivered = relayed(relay, customer)
    (outcome,) = deliver(relay, "", [bounce], dsn(bounce, delivered)).outcomes
    assert outcome.accepted
    # the report itself goes nowhere; the carrier gets a notice naming the alias only
    assert outcome.deliver_to == CARRIER
    assert outcome.mail_from == ""
    assert outcome.message is not None
    notice = outcome.message.decode()
    assert customer.address in notice
    for secret in ("maria", "example.com.br"):
        assert secret not in notice.lower()
    headers = {f.name: f.value for f in parse_headers(split_message(outcome.message).headers)}
    assert headers["Auto-Submitted"] == "auto-replied"
    (failure,) = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-failed"]
    assert failure.data == {
        "status": "5.1.1",
        "action": "failed",
        "hard": True,
        "source": "report",
        "kind": "delivery-status",
        "via": "bounce-address",
        "ref": customer.key,
        "role": "customer",
    }
    assert len(tracker.timeline(ORDER).messages) == 1  # the carrier's message, not the report
    assert CUSTOMER not in str(tracker.timeline(ORDER).to_dict())
    contacts = [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]
    assert [a.real_address for a in contacts] == [CARRIER]  # MAILER-DAEMON is nobody


def test_a_delay_is_soft_and_an_automatic_original_is_not_answered(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    bounce, delivered = relayed(relay, customer)
    (outcome,) = relay.handle(
        "", [bounce], dsn(bounce, delivered, action="delayed", status="4.4.1")
    ).outcomes
    assert outcome.accepted
    (failure,) = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-failed"]
    assert failure.data["hard"] is False
    auto = delivered.replace(b"Subject:", b"Auto-Submitted: auto-generated\r\nSubject:", 1)
    (outcome,) = relay.handle("", [bounce], dsn(bounce, auto)).outcomes
    assert outcome.accepted
    assert outcome.deliver_to is None  # never answer automatic mail


def test_a_null_sender_report_to_an_alias_is_consumed(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    _, delivered = relayed(relay, customer)
    (outcome,) = relay.handle("<>", [customer.address], dsn(customer.address, delivered)).outcomes
    assert outcome.accepted
    assert outcome.message is None or CUSTOMER.encode() not in outcome.message


def test_three_hard_bounces_revoke_the_alias(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    for _ in range(3):
        bounce, delivered = relayed(relay, customer)
        relay.handle("", [bounce], dsn(bounce, delivered))
        clock.advance(timedelta(days=1))
    events = [e for e in tracker.timeline(ORDER).events if e.name == "alias-revoked"]
    assert [e.data.get("reason") for e in events] == ["bounced"]
    refusal = relay.check_recipient(customer.address)
    assert refusal is not None
    assert (refusal.code, refusal.status) == (550, "5.2.1")


def test_bounces_outside_the_window_do_not_count(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    for _ in range(3):
        bounce, delivered = relayed(relay, customer)
        relay.handle("", [bounce], dsn(bounce, delivered))
        clock.advance(timedelta(days=16))  # 0, 16, 32: never three within 30 days
    assert relay.check_recipient(customer.address) is None


def test_the_database_keeps_nothing_of_the_report(tmp_path: Path, clock: FrozenClock) -> None:
    from ct_alias.storage.sql import SQLStorage

    database = tmp_path / "ct.db"
    storage = SQLStorage(f"sqlite:///{database}")
    storage.upgrade()
    try:
        tracker = make(clock, storage, address_keys=[ADDRESS_KEY])  # type: ignore[arg-type]
        relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
        customer = tracker.mask(CUSTOMER, conversation=ORDER)
        bounce, delivered = relayed(relay, customer)
        deliver(relay, "", [bounce], dsn(bounce, delivered))
    finally:
        storage.close()
    raw = database.read_bytes().lower()
    for secret in (b"maria.silva", b"example.com.br", b"user unknown"):
        assert secret not in raw


def test_read_report_never_fails_on_bytes() -> None:
    assert read_report(b"") is None
    assert read_report(b"Subject: hi\r\n\r\nbody") is None
    broken = b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\ngarbage\xff\r\n"
    report = read_report(broken)
    assert report is not None
    assert not report.failed


def test_reports_to_a_plain_alias_cannot_end_it(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    """Anyone who knows an alias can send it null-sender reports: they never revoke it."""
    _, delivered = relayed(relay, customer)
    for _ in range(5):
        (outcome,) = relay.handle("", [customer.address], dsn(customer.address, delivered)).outcomes
        assert outcome.accepted
        assert outcome.deliver_to is None
    assert relay.check_recipient(customer.address) is None
    failures = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-failed"]
    assert {e.data["via"] for e in failures} == {"alias"}


# -- every part of a consumed report, one at a time ------------------------------------


def test_a_consumed_report_outcome_carries_exactly_this(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    bounce, delivered = relayed(relay, customer)
    report = dsn(bounce, delivered).replace(b"text/rfc822-headers", b"text/plain")
    (outcome,) = relay.handle("", [bounce], report).outcomes
    assert outcome.recipient == bounce
    assert (outcome.code, outcome.status) == (250, "2.0.0")
    assert outcome.reason == "delivery report recorded"
    assert (outcome.conversation, outcome.store) == (customer.conversation, customer.store)
    assert outcome.report is True
    assert outcome.deliver_to is None
    assert outcome.message is None
    assert outcome.mail_from is None
    assert outcome.original is None
    assert relay.delivered(outcome) is None


def test_the_notice_outcome_carries_exactly_this(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    bounce, delivered = relayed(relay, customer)
    (outcome,) = relay.handle("<>", [f"<{bounce.upper()}>"], dsn(bounce, delivered)).outcomes
    assert (outcome.code, outcome.status) == (250, "2.0.0")
    assert outcome.reason == "delivery report recorded; the sender is told"
    assert outcome.deliver_to == CARRIER
    assert outcome.mail_from == ""
    assert (outcome.conversation, outcome.store) == (customer.conversation, customer.store)
    assert outcome.report is True
    assert relay.delivered(outcome) is None  # a notice is not a message of the order
    assert len(tracker.timeline(ORDER).messages) == 1


def test_a_plain_message_to_a_bounce_address_is_consumed_and_records_nothing(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    bounce, _ = relayed(relay, customer)
    before = len(tracker.timeline(ORDER).entries)
    auto = b"From: someone@example.org\r\nSubject: out of office\r\n\r\naway\r\n"
    (outcome,) = relay.handle("someone@example.org", [bounce], auto).outcomes
    assert outcome.accepted
    assert outcome.report is True
    assert outcome.deliver_to is None
    assert len(tracker.timeline(ORDER).entries) == before


def test_a_report_with_a_sender_to_a_plain_alias_is_relayed_not_consumed(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    _, delivered = relayed(relay, customer)
    report = dsn(customer.address, delivered)
    (outcome,) = relay.handle(CARRIER, [customer.address], report).outcomes
    assert outcome.accepted
    assert outcome.report is False
    assert outcome.deliver_to == CUSTOMER


@pytest.mark.parametrize("problem", ["forged", "expired", "unknown", "domain"])
def test_bad_bounce_addresses_are_refused(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock, problem: str
) -> None:
    bounce = tracker.bounce_address(customer)
    assert bounce is not None
    local, _, domain = bounce.partition("@")
    if problem == "forged":
        bounce = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    elif problem == "expired":
        clock.advance(BOUNCE_TTL + timedelta(seconds=1))
    elif problem == "unknown":
        stranger = make(clock).mask("joao@example.org", conversation="9")
        bounce = make(clock).bounce_address(stranger) or ""
    else:
        bounce = f"{local}@sub.{domain}"
    refusal = relay.check_recipient(bounce)
    assert refusal is not None
    assert (refusal.code, refusal.status, refusal.reason) == (
        550,
        "5.1.1",
        "no such bounce address",
    )
    (outcome,) = relay.handle("", [bounce], dsn(bounce, b"From: x@y\r\n\r\n")).outcomes
    assert (outcome.code, outcome.status) == (550, "5.1.1")


def test_a_bounce_address_when_storage_is_down_is_a_temporary_failure(
    clock: FrozenClock,
) -> None:
    storage = FailingStorage()
    tracker = make(clock, storage)
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    bounce = tracker.bounce_address(customer)
    assert bounce is not None
    storage.failing.add("get")
    refusal = Relay(tracker).check_recipient(bounce)
    assert refusal is not None
    assert (refusal.code, refusal.status) == (451, "4.3.0")


def test_permanent_downstream_refusals_count_as_hard_bounces(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    for permanent in (False, False, True, True):
        (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail(customer)).outcomes
        relay.delivery_failed(
            outcome,
            550 if permanent else 451,
            "5.1.1" if permanent else "4.4.1",
            permanent=permanent,
        )
        clock.advance(timedelta(hours=1))
    assert relay.check_recipient(customer.address) is None  # two hard ones only
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail(customer)).outcomes
    relay.delivery_failed(outcome, 550, "5.1.1", permanent=True)
    refusal = relay.check_recipient(customer.address)
    assert refusal is not None
    assert "revoked" in refusal.reason


def test_bounce_limit_zero_never_revokes(tracker: Tracker, customer: Alias) -> None:
    tracker.set_policy("default", Policy(domain=DOMAIN, bounce_limit=0))
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    for _ in range(5):
        bounce, delivered = relayed(relay, customer)
        relay.handle("", [bounce], dsn(bounce, delivered))
    assert relay.check_recipient(customer.address) is None


# -- the pure parts, at their edges ----------------------------------------------------


def test_make_bounce_address_edges() -> None:
    codec = AliasCodec([SIGNING_KEY])
    at = datetime(2026, 1, 1, tzinfo=UTC)
    key = "00112233445566778899aabbccddeeff"
    assert make_bounce_address(codec, "not hex", DOMAIN, at) is None
    assert make_bounce_address(codec, key[:-2], DOMAIN, at) is None  # 15 bytes
    assert make_bounce_address(codec, key + "00", DOMAIN, at) is None  # 17 bytes
    longest = "d" * (254 - 48 - 1)  # a bounce address of exactly 254 octets
    address = make_bounce_address(codec, key, longest, at)
    assert address is not None
    assert len(address) == 254
    assert make_bounce_address(codec, key, longest + "d", at) is None
    assert read_bounce_address(codec, address, longest)[0] == key


def test_looks_like_bounce_address() -> None:
    assert looks_like_bounce_address("3" + "0" * 47)
    assert looks_like_bounce_address("3" + "V" * 47)
    assert not looks_like_bounce_address("1" + "0" * 47)  # another format's marker
    assert not looks_like_bounce_address("3" + "0" * 46)
    assert not looks_like_bounce_address("3" + "0" * 48)
    assert not looks_like_bounce_address("")


def test_reports_in_another_store_stay_in_that_store(clock: FrozenClock) -> None:
    tracker = make(clock)
    tracker.set_policy("loja-b", Policy(domain=DOMAIN, bounce_limit=2))
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    customer = tracker.mask(CUSTOMER, conversation=ORDER, store="loja-b")
    for _ in range(2):
        bounce, delivered = relayed(relay, customer)
        (outcome,) = relay.handle("", [bounce], dsn(bounce, delivered)).outcomes
        assert outcome.store == "loja-b"
    events = tracker.timeline(ORDER, store="loja-b").events
    assert [e.data["hard"] for e in events if e.name == "delivery-failed"] == [True, True]
    assert [e.data.get("reason") for e in events if e.name == "alias-revoked"] == ["bounced"]
    assert tracker.timeline(ORDER).entries == ()  # the default store's order 1001 saw nothing
    refusal = relay.check_recipient(customer.address)
    assert refusal is not None
    assert refusal.store == "loja-b"


def test_count_hard_bounce_counts_within_the_window_only(
    tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    relay = Relay(tracker)
    for _ in range(2):
        (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail(customer)).outcomes
        relay.delivery_failed(outcome, 550, "5.1.1", permanent=True)
    assert count_hard_bounce(tracker, customer) is False  # two of three
    clock.advance(timedelta(days=30))  # the first two are exactly at the window's start
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail(customer)).outcomes
    relay.delivery_failed(outcome, 550, "5.1.1", permanent=True)
    assert relay.check_recipient(customer.address) is not None  # 3 within [since, now]
    revoked = tracker.lookup(customer.address)
    assert isinstance(revoked, Alias)
    assert count_hard_bounce(tracker, revoked) is False  # already revoked: nothing to do


def test_count_hard_bounce_returns_whether_it_revoked(tracker: Tracker, customer: Alias) -> None:
    for _ in range(3):
        tracker.record_event(
            ORDER,
            "delivery-failed",
            data={"hard": True, "ref": customer.key, "status": "5.1.1", "code": 550},
        )
    assert count_hard_bounce(tracker, customer) is True


def test_the_notice_itself(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    bounce, delivered = relayed(relay, customer)
    (outcome,) = relay.handle("", [bounce], dsn(bounce, delivered, status="5.2.2")).outcomes
    assert outcome.message is not None
    notice = message_from_bytes(outcome.message, policy=email.policy.default)
    assert notice["From"] == f"Mail Delivery System <mailer-daemon@{DOMAIN}>"
    assert notice["To"] == CARRIER
    assert notice["Subject"] == "Undelivered mail"
    assert notice["Auto-Submitted"] == "auto-replied"
    assert notice["Date"].datetime == clock.now()
    assert str(notice["Message-ID"]).endswith(f"@{DOMAIN}>")
    body = notice.get_content()
    assert f"Your message to {customer.address} could not be delivered (status 5.2.2)." in body
    assert "please do not reply" in body
    soft = dsn(bounce, delivered, action="delayed", status="4.4.7")
    (later,) = relay.handle("", [bounce], soft).outcomes
    assert later.message is not None
    later_notice = message_from_bytes(later.message, policy=email.policy.default)
    assert "has not been delivered yet (status 4.4.7)." in later_notice.get_content()


def test_a_notice_to_an_international_address_is_smtputf8(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    carrier = "entregas-ação@transportadora.example.net"
    mail = carrier_mail(customer).replace(CARRIER.encode(), carrier.encode())
    (sent,) = deliver(relay, carrier, [customer.address], mail).outcomes
    assert sent.accepted
    assert sent.mail_from is not None
    assert sent.message is not None
    (outcome,) = relay.handle("", [sent.mail_from], dsn(sent.mail_from, sent.message)).outcomes
    assert outcome.deliver_to == carrier
    assert outcome.message is not None
    assert carrier.encode() in outcome.message  # written as UTF-8, not as encoded words


def test_strip_brackets_takes_a_pair_only() -> None:
    assert strip_brackets(" <a@b.example> ") == "a@b.example"
    assert strip_brackets("<a@b.example") == "<a@b.example"
    assert strip_brackets("a@b.example>") == "a@b.example>"


def test_unsigned_reports_never_help_signed_ones_revoke(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    _, delivered = relayed(relay, customer)
    for _ in range(2):  # a stranger's null-sender reports to the plain alias
        relay.handle("", [customer.address], dsn(customer.address, delivered))
    bounce, delivered = relayed(relay, customer)
    relay.handle("", [bounce], dsn(bounce, delivered))  # one genuine hard bounce
    assert relay.check_recipient(customer.address) is None  # 1 of 3, not 3 of 3


def test_count_hard_bounce_with_no_limit_does_nothing(tracker: Tracker, customer: Alias) -> None:
    tracker.set_policy("default", Policy(domain=DOMAIN, bounce_limit=0))
    assert count_hard_bounce(tracker, customer) is False


def test_the_notice_goes_to_the_returned_sender_only(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    tracker.mask(CARRIER, conversation=ORDER, role=Role.CONTACT)  # a contact exists...
    store = tracker.mask("vendas@loja.example.com", conversation=ORDER, role=Role.STORE)
    bounce = tracker.bounce_address(customer)
    assert bounce is not None
    returned = f"From: Loja <{store.address}>\r\nSubject: x\r\n\r\n".encode()
    (outcome,) = relay.handle("", [bounce], dsn(bounce, returned)).outcomes
    assert outcome.accepted
    assert outcome.deliver_to is None  # ...but the failed message was the store's: nobody told


def test_a_notice_in_another_store_names_its_domain(clock: FrozenClock) -> None:
    tracker = make(clock)
    tracker.set_policy("loja-b", Policy(domain="ct2.example.com"))
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    customer = tracker.mask(CUSTOMER, conversation=ORDER, store="loja-b")
    bounce, delivered = relayed(relay, customer)
    assert bounce.endswith("@ct2.example.com")
    no_status = dsn(bounce, delivered).replace(b"Status: 5.1.1\r\n", b"")
    (outcome,) = relay.handle("", [bounce], no_status).outcomes
    assert outcome.deliver_to == CARRIER
    assert outcome.message is not None
    notice = message_from_bytes(outcome.message, policy=email.policy.default)
    assert notice["From"] == "Mail Delivery System <mailer-daemon@ct2.example.com>"
    message_id = str(notice["Message-ID"])
    assert re.fullmatch(r"<[0-9a-f]{32}@ct2\.example\.com>", message_id)
    body = notice.get_content()
    assert f"Your message to {customer.address} could not be delivered.\r\n" in body
    assert "(status" not in body
