"""Who may speak as whom through the relay: the attacker's tests.

Each test reproduces a finding of the relay's security review and shows it
refused or harmless: no open relay through contact aliases, no forged store or
customer, no real address in any delivered header, no crash on hostile bytes,
no rows written by probes, no conversation inflated by one message.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ct_alias import Alias, FrozenClock, MemoryStorage, Policy, Role, Tracker
from ct_alias.auth import AuthenticationResults
from ct_alias.mail import parse_headers, split_message
from ct_alias.relay import Relay, RelayResult

from .conftest import DOMAIN

# generated with `ct-alias keys generate` for these tests only
SIGNING_KEY = "p4kZ2kq0y3oQXvP0k8W6mS9bV1uJd7tRcE5fH2aL3nI"
INDEX_KEY = "T8eW1zq6rB4yN0cV7xM2kL5jH9gF3dS6aP1oI4uY8tR"
MTA = "mx.ct.example.com"
ORDER = "1001"
CUSTOMER = "Maria.Silva@example.com.br"
STORE = "vendas@loja.example.com"
CARRIER = "rastreio@transportadora.example.net"
ATTACKER = "mallory@evil.example"
VICTIM = "victim@gmail.example.com"
UNVERIFIED = f"unverified-sender@{DOMAIN}"


def passed(address: str, *, by: str = MTA) -> str:
    return f"Authentication-Results: {by}; dmarc=pass header.from={address.rpartition('@')[2]}"


def mail(*headers: str, body: bytes = b"Hello,\r\nthe body.\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def deliver(relay: Relay, sender: str, recipients: list[str], data: bytes) -> RelayResult:
    """:meth:`Relay.handle`, then the hand-off succeeds for every accepted recipient."""
    result = relay.handle(sender, recipients, data)
    for outcome in result.accepted:
        relay.delivered(outcome)
    return result


def header_block(message: bytes | None) -> bytes:
    assert message is not None
    return split_message(message).headers


def values(message: bytes | None, name: str) -> list[str]:
    return [f.value for f in parse_headers(header_block(message)) if f.name.lower() == name.lower()]


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
def relay(tracker: Tracker) -> Relay:
    return Relay(tracker, authenticator=AuthenticationResults(MTA))


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


@pytest.fixture
def store(tracker: Tracker) -> Alias:
    return tracker.mask(STORE, conversation=ORDER, role=Role.STORE)


@pytest.fixture
def attacker(tracker: Tracker) -> Alias:
    """The attacker's own order: an alias that delivers to him."""
    return tracker.mask(ATTACKER, conversation="2002")


def real_addresses(tracker: Tracker, conversation: str) -> set[str]:
    return {a.real_address.lower() for a in tracker.aliases(conversation)}


# -- finding 1: no open relay through contact aliases ----------------------------------


@pytest.mark.parametrize("field", ["From", "Reply-To"])
def test_no_alias_for_an_address_that_never_authenticated(
    relay: Relay, tracker: Tracker, attacker: Alias, field: str
) -> None:
    lines = [f"To: {attacker.address}", "Subject: hi"]
    if field == "From":
        lines.append(f"From: Victim <{VICTIM}>")
    else:  # an authenticated sender names someone else to reply to
        lines += [passed(ATTACKER), f"From: {ATTACKER}", f"Reply-To: {VICTIM}"]
    (outcome,) = deliver(relay, ATTACKER, [attacker.address], mail(*lines)).outcomes
    assert outcome.accepted
    assert VICTIM not in real_addresses(tracker, "2002")
    block = header_block(outcome.message).decode().lower()
    assert VICTIM not in block
    shown = {a.address for a in tracker.aliases("2002")}
    # nothing in the delivered header is a working alias for the victim
    for address in shown:
        if address in block:
            assert tracker.unmask(address).real_address.lower() != VICTIM


def test_a_long_reply_to_mints_nothing(relay: Relay, tracker: Tracker, attacker: Alias) -> None:
    victims = ", ".join(f"v{i}@gmail.example.com" for i in range(3000))
    data = mail(passed(ATTACKER), f"From: {ATTACKER}", f"Reply-To: {victims}")
    (outcome,) = deliver(relay, ATTACKER, [attacker.address], data).outcomes
    assert outcome.accepted
    # the attacker (authenticated, his own domain) got one contact alias; no victim got one
    assert real_addresses(tracker, "2002") == {ATTACKER}
    assert values(outcome.message, "Reply-To") == []
    (entry,) = tracker.timeline("2002").messages
    assert entry.data["relay"]["dropped"]["reply-to"] == 3000


def test_reply_to_of_the_same_authenticated_domain_is_masked(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    data = mail(
        passed(CARRIER),
        f"From: {CARRIER}",
        "Reply-To: Suporte <suporte@transportadora.example.net>, x@other.example",
    )
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    contacts = {a.real_address: a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT}
    assert set(contacts) == {CARRIER, "suporte@transportadora.example.net"}
    support = contacts["suporte@transportadora.example.net"]
    assert values(outcome.message, "Reply-To") == [f"Suporte <{support.address}>"]


def test_contacts_per_conversation_are_capped(tracker: Tracker, customer: Alias) -> None:
    tracker.set_policy("default", Policy(domain=DOMAIN, max_contacts=2))
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    codes = []
    for i in range(4):
        sender = f"news@sender{i}.example"
        data = mail(passed(sender), f"From: {sender}")
        codes.append(deliver(relay, sender, [customer.address], data).outcomes[0].code)
    assert codes == [250, 250, 550, 550]
    assert len([a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]) == 2
    # a known contact writes again: still welcome
    data = mail(passed("news@sender0.example"), "From: news@sender0.example")
    assert deliver(relay, "x@sender0.example", [customer.address], data).outcomes[0].accepted


# -- finding 2: no forged store, customer or alias-domain sender -----------------------


def test_forged_store_is_not_the_store(
    relay: Relay, tracker: Tracker, customer: Alias, store: Alias
) -> None:
    data = mail(
        f"From: Loja <{STORE}>",
        f"To: {customer.address}",
        # a sender-made verdict with another id, and one with ours below the top
        "Authentication-Results: mx.evil.example; dmarc=pass header.from=loja.example.com",
        "Subject: Pague aqui",
    )
    (outcome,) = deliver(relay, "x@evil.example", [customer.address], data).outcomes
    assert outcome.accepted
    assert values(outcome.message, "From") == [f'"Loja (unverified)" <{UNVERIFIED}>']
    assert UNVERIFIED in values(outcome.message, "From")[0]
    assert store.address not in header_block(outcome.message).decode()
    (entry,) = tracker.timeline(ORDER).messages
    assert entry.data["from"] == [{"name": "Loja", "unverified": True}]  # no role, no address
    assert entry.data["authentication"]["verdict"] == "none"
    assert STORE not in str(entry.data)


def test_forged_verdict_below_the_mta_is_ignored(
    relay: Relay, tracker: Tracker, customer: Alias, store: Alias
) -> None:
    data = mail(
        f"Authentication-Results: {MTA}; dmarc=fail header.from=loja.example.com",
        passed(STORE),  # written by the sender, under the MTA's own
        f"From: Loja <{STORE}>",
    )
    (outcome,) = deliver(relay, "x@evil.example", [customer.address], data).outcomes
    assert UNVERIFIED in values(outcome.message, "From")[0]
    assert store.address not in header_block(outcome.message).decode()


def test_forged_customer_is_not_the_customer(
    relay: Relay, tracker: Tracker, customer: Alias, store: Alias
) -> None:
    data = mail(f"From: Maria <{CUSTOMER}>", f"To: {store.address}", "Subject: cancel my order")
    (outcome,) = deliver(relay, CUSTOMER, [store.address], data).outcomes
    assert UNVERIFIED in values(outcome.message, "From")[0]
    assert customer.address not in header_block(outcome.message).decode()
    (entry,) = tracker.timeline(ORDER).messages
    assert "ref" not in entry.data["from"][0]


def test_a_from_under_the_alias_domain_is_never_trusted(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    sender = f"security@{DOMAIN}"
    data = mail(passed(sender), f"From: Security <{sender}>")
    (outcome,) = deliver(relay, sender, [customer.address], data).outcomes
    assert UNVERIFIED in values(outcome.message, "From")[0]
    assert not [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]


def test_the_real_store_is_the_store(
    relay: Relay, tracker: Tracker, customer: Alias, store: Alias
) -> None:
    data = mail(passed(STORE), f"From: Loja <{STORE}>", f"To: {customer.address}")
    (outcome,) = deliver(relay, "bounces@loja.example.com", [customer.address], data).outcomes
    assert tracker.bounced(outcome.mail_from or "").key == customer.key
    assert values(outcome.message, "From") == [f"Loja <{store.address}>"]
    (entry,) = tracker.timeline(ORDER).messages
    assert entry.data["from"][0]["role"] == "store"


def test_unverified_address_accepts_no_mail(relay: Relay) -> None:
    for address in (UNVERIFIED, UNVERIFIED.upper(), f"mailer-daemon@{DOMAIN}"):
        outcome = relay.check_recipient(address)
        assert outcome is not None
        assert (outcome.code, outcome.status) == (550, "5.7.1")
        assert "accepts no mail" in outcome.reason


def test_policy_may_refuse_unauthenticated_mail(tracker: Tracker, customer: Alias) -> None:
    tracker.set_policy("default", Policy(domain=DOMAIN, unauthenticated="refuse"))
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    (outcome,) = deliver(relay, CARRIER, [customer.address], mail(f"From: {CARRIER}")).outcomes
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    assert "authenticate" in outcome.reason
    data = mail(passed(CARRIER), f"From: {CARRIER}")
    assert deliver(relay, CARRIER, [customer.address], data).outcomes[0].accepted


def test_relay_without_authenticator_vouches_for_nobody(tracker: Tracker, customer: Alias) -> None:
    relay = Relay(tracker)
    data = mail(passed(CARRIER), f"From: {CARRIER}")
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    assert UNVERIFIED in values(outcome.message, "From")[0]
    assert not [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]


# -- finding 3: nothing of the other side in a delivered reply -------------------------

HOSTILE_SPELLINGS = [
    'Subject: Re: pedido de "Maria.Silva"@example.com.br',
    "Subject: Re: pedido de maria.silva(me)@example.com.br",
    "Subject: Re: pedido de maria.silva@\r\n example.com.br",
    "Subject: Re: pedido de maria.silva\uff20example.com.br",
    "Subject: =?utf-8?q?maria=2Esilva=40example=2Ecom=2Ebr?=",
    "Thread-Topic: maria.silva @ example.com.br",
]


@pytest.mark.parametrize("spelling", HOSTILE_SPELLINGS)
def test_a_reply_carries_nothing_of_the_customer(
    relay: Relay, tracker: Tracker, customer: Alias, store: Alias, spelling: str
) -> None:
    contact = tracker.mask(CARRIER, conversation=ORDER, role=Role.CONTACT)
    data = mail(
        "Received: from maria-laptop ([198.51.100.77]) by mx.example.com.br; Thu, 1 Jan 2026",
        "Received: from mx.example.com.br by mx.ct.example.com for <x>; Thu, 1 Jan 2026",
        passed(CUSTOMER),
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.com.br; s=sel; b=abc; bh=def",
        "Authentication-Results: mx.example.com.br; spf=pass smtp.mailfrom=example.com.br",
        "X-Originating-IP: [198.51.100.77]",
        "User-Agent: Thunderbird on maria-laptop",
        "X-Mailer: example.com.br webmail",
        f"Return-Path: <{CUSTOMER}>",
        f"Delivered-To: {CUSTOMER}",
        "Message-ID: <CAF1234@mail.example.com.br>",
        f'From: "Maria Silva" <{CUSTOMER}>',
        f"Sender: {CUSTOMER}",
        f"Disposition-Notification-To: {CUSTOMER}",
        f"To: {contact.address}",
        spelling,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ).replace(b"\r\n example", b"\r\n example")
    (outcome,) = deliver(relay, CUSTOMER, [contact.address], data).outcomes
    assert outcome.accepted, outcome
    block = header_block(outcome.message)
    decoded = " ".join(f.value for f in parse_headers(block))
    for text in (block.decode("utf-8", "replace"), decoded):
        lowered = text.lower()
        for secret in ("maria.silva", "example.com.br", "198.51.100.77", "maria-laptop"):
            assert secret not in lowered, (secret, text)
    assert "maria" not in (outcome.mail_from or "").lower()
    # what a reader needs is still there
    assert values(outcome.message, "MIME-Version") == ["1.0"]
    assert values(outcome.message, "Content-Type") == ["text/plain; charset=utf-8"]
    (message_id,) = values(outcome.message, "Message-ID")
    assert message_id.endswith(f"@{DOMAIN}>")


def test_threading_holds_on_both_sides(relay: Relay, tracker: Tracker, customer: Alias) -> None:
    """Carrier → customer → reply → answer: each side's ids resolve in its own mailbox."""
    first = mail(
        passed(CARRIER),
        f"From: {CARRIER}",
        f"To: {customer.address}",
        "Message-ID: <m1@transportadora.example.net>",
        "Subject: Entrega",
    )
    (to_customer,) = deliver(relay, CARRIER, [customer.address], first).outcomes
    (seen_by_customer,) = values(to_customer.message, "Message-ID")
    contact = next(a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT)

    reply = mail(
        passed(CUSTOMER),
        f"From: {CUSTOMER}",
        f"To: {contact.address}",
        "Message-ID: <r1@mail.example.com.br>",
        f"In-Reply-To: {seen_by_customer}",
        f"References: {seen_by_customer}",
        "Subject: Re: Entrega",
    )
    (to_carrier,) = deliver(relay, CUSTOMER, [contact.address], reply).outcomes
    # the carrier sees its own original id, and a stand-in for the customer's
    assert values(to_carrier.message, "In-Reply-To") == ["<m1@transportadora.example.net>"]
    assert values(to_carrier.message, "References") == ["<m1@transportadora.example.net>"]
    (seen_by_carrier,) = values(to_carrier.message, "Message-ID")
    assert "example.com.br" not in seen_by_carrier

    answer = mail(
        passed(CARRIER),
        f"From: {CARRIER}",
        f"To: {customer.address}",
        "Message-ID: <m2@transportadora.example.net>",
        f"In-Reply-To: {seen_by_carrier}",
        f"References: <m1@transportadora.example.net> {seen_by_carrier}",
        "Subject: Re: Re: Entrega",
    )
    (back,) = deliver(relay, CARRIER, [customer.address], answer).outcomes
    # the customer sees her own original id, and the stand-in she already knows for m1
    assert values(back.message, "In-Reply-To") == ["<r1@mail.example.com.br>"]
    assert values(back.message, "References") == [f"{seen_by_customer} <r1@mail.example.com.br>"]
    assert b"transportadora" not in header_block(back.message)


# -- findings 5 and 6: hostile bytes are refused cleanly -------------------------------


def test_a_bare_cr_in_the_header_is_refused(relay: Relay, customer: Alias) -> None:
    data = mail(passed(CARRIER), f"From: {CARRIER}", f"Subject: x\rReply-To: {ATTACKER}")
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (554, "5.6.0")
    assert outcome.message is None


@pytest.mark.parametrize("field", ["Cc", "From", "Reply-To", "To"])
def test_deeply_nested_comments_are_a_clean_refusal(
    relay: Relay, tracker: Tracker, customer: Alias, field: str
) -> None:
    nested = "(" * 500 + "x" + ")" * 500
    data = mail(passed(CARRIER), f"From: {CARRIER}", f"{field}: {nested} <a@b.example>")
    if field == "From":
        data = mail(passed(CARRIER), f"From: {nested} <{CARRIER}>")
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (554, "5.6.0")
    assert "nested" in outcome.reason
    # recording the same bytes directly works too, with the defect noted
    entry = tracker.record_message(ORDER, data, direction="outbound")
    assert any("nested" in d for d in entry.data["defects"]) or field == "From"


# -- finding 7: probing an expired alias writes at most once an hour -------------------


def test_probes_of_an_expired_alias_write_once_an_hour(
    relay: Relay, tracker: Tracker, customer: Alias, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=61))
    before = len(tracker.timeline(ORDER).entries)
    for _ in range(1000):
        outcome = relay.check_recipient(customer.address)
        assert outcome is not None
        assert outcome.code == 550
    assert len(tracker.timeline(ORDER).entries) == before + 1
    clock.advance(timedelta(minutes=61))
    relay.check_recipient(customer.address)
    assert len(tracker.timeline(ORDER).entries) == before + 2


# -- finding 8: one message cannot inflate a conversation ------------------------------


def test_one_message_adds_at_most_two_contacts(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    many = ", ".join(f"desk{i}@transportadora.example.net" for i in range(3000))
    cc = ", ".join(f"cc{i}@transportadora.example.net" for i in range(3000))
    data = mail(passed(CARRIER), f"From: {CARRIER}", f"Reply-To: {many}", f"Cc: {cc}")
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    assert outcome.accepted
    contacts = [a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT]
    assert len(contacts) == 2  # the author and one Reply-To address of its own domain


# -- a contact's alias delivers only the order's own participants' mail ----------------


def test_a_freemail_reply_to_gives_the_attacker_no_way_to_the_victim(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    """Same provider, different person: the Reply-To is masked, but only the customer may use it."""
    attacker, victim = "mallory@mail.example", "victim@mail.example"
    data = mail(passed(attacker), f"From: {attacker}", f"Reply-To: {victim}")
    (outcome,) = deliver(relay, attacker, [customer.address], data).outcomes
    assert outcome.accepted
    contacts = {a.real_address: a for a in tracker.aliases(ORDER) if a.role is Role.CONTACT}
    assert set(contacts) == {attacker, victim}
    # the attacker writes to the victim's alias: refused, nothing is delivered
    spam = mail(passed(attacker), f"From: {attacker}", "Subject: buy now")
    (refused,) = deliver(relay, attacker, [contacts[victim].address], spam).outcomes
    assert (refused.code, refused.status) == (550, "5.7.1")
    assert refused.deliver_to is None
    # the customer, answering the mail she got, reaches the address it named
    answer = mail(passed(CUSTOMER), f"From: {CUSTOMER}", f"To: {contacts[victim].address}")
    (delivered,) = deliver(relay, CUSTOMER, [contacts[victim].address], answer).outcomes
    assert delivered.accepted
    assert delivered.deliver_to == victim


def test_unverified_mail_to_a_contact_is_refused(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    contact = tracker.mask(CARRIER, conversation=ORDER, role=Role.CONTACT)
    forged = mail(f"From: Maria <{CUSTOMER}>", f"To: {contact.address}")
    (outcome,) = deliver(relay, CUSTOMER, [contact.address], forged).outcomes
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    other = tracker.mask("suporte@outra.example", conversation=ORDER, role=Role.CONTACT)
    sideways = mail(passed(CARRIER), f"From: {CARRIER}", f"To: {other.address}")
    (outcome,) = deliver(relay, CARRIER, [other.address], sideways).outcomes
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    (event,) = [e for e in tracker.timeline(ORDER).events if e.name == "delivery-rejected"][-1:]
    assert event.data["status"] == "5.7.1"


@pytest.mark.parametrize(
    "field",
    [
        "Subject: " + " ".join(["=?utf-8?q?caf=C3=A9?="] * 4000),
        "Subject: " + "=?x-unknown?b?!!!?=" * 2000,
        "Subject: " + "=?utf-8?b?" + "A" * 50_000 + "?=",
        f"From: {' '.join(['=?utf-8?q?a=40b?='] * 3000)} <{CARRIER}>",
        "Cc: " + ", ".join(f"=?utf-8?q?n{i}?= <x{i}@y.example>" for i in range(3000)),
    ],
)
def test_pathological_encoded_words_are_a_clean_outcome(
    relay: Relay, customer: Alias, field: str
) -> None:
    data = (
        mail(passed(CARRIER), f"From: {CARRIER}", field)
        if "From:" not in field
        else mail(passed(CARRIER), field)
    )
    (outcome,) = deliver(relay, CARRIER, [customer.address], data).outcomes
    assert outcome.code in {250, 554}, outcome
    assert outcome.reason.isprintable()
    if outcome.accepted:
        assert outcome.message is not None
        for line in header_block(outcome.message).split(b"\r\n"):
            assert len(line) <= 998 or not line.startswith((b"From:", b"Cc:", b"Reply-To:"))
