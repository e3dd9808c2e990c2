"""How many storage calls the relay makes per message, and why the ones it saves are safe.

``ct-alias serve`` checks a recipient at ``RCPT`` (one read of the alias) and handles the
message at ``DATA``. At ``DATA`` the relay reads the conversation's participants once, finds
the recipient among them (its state taken from that fresh read) and hands the same read to the
header rewrite. Only the alias's conversation and store are carried from ``RCPT`` to ``DATA``:
they never change, so a revocation, an erasure, an end or an expiry between the two still
refuses the message.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ct_alias import Alias, FrozenClock, Policy, Tracker
from ct_alias.auth import AuthenticationResults
from ct_alias.relay import Relay
from ct_alias.testing import CountingStorage, make_tracker

from .conftest import DOMAIN

MTA = "mx.ct.example.com"
CARRIER = "rastreio@transportadora.example.net"
ORDER = "order-1"


@pytest.fixture
def storage() -> CountingStorage:
    return CountingStorage()


@pytest.fixture
def tracker(storage: CountingStorage, clock: FrozenClock) -> Tracker:
    return make_tracker(
        storage, clock=clock, default_policy=Policy(domain=DOMAIN, ttl=timedelta(days=30))
    )


@pytest.fixture
def relay(tracker: Tracker) -> Relay:
    return Relay(tracker, authenticator=AuthenticationResults(MTA))


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask("cliente@example.com.br", conversation=ORDER)


def carrier_mail(to: str, number: int) -> bytes:
    return (
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"
        f"From: Transportadora <{CARRIER}>\r\nTo: {to}\r\nSubject: Entrega\r\n"
        f"Message-ID: <{number}@transportadora.example.net>\r\n\r\nChega amanha.\r\n"
    ).encode()


def relay_one(relay: Relay, storage: CountingStorage, to: str, number: int) -> dict[str, int]:
    """RCPT, DATA and the record after the hand-off, as `serve` does; the calls of each."""
    calls: dict[str, int] = {}
    storage.calls.clear()
    assert relay.check_recipient(to) is None
    calls["rcpt"] = storage.total
    storage.calls.clear()
    (outcome,) = relay.handle(CARRIER, [to], carrier_mail(to, number)).outcomes
    assert outcome.accepted, outcome
    calls["data"] = storage.total
    storage.calls.clear()
    assert relay.delivered(outcome) is not None
    calls["delivered"] = storage.total
    return calls


def test_a_relayed_message_costs_four_storage_calls(
    relay: Relay, storage: CountingStorage, customer: Alias
) -> None:
    relay_one(relay, storage, customer.address, 0)  # the first one issues the carrier's alias
    calls = relay_one(relay, storage, customer.address, 1)
    # RCPT: the alias; DATA: the participants (once: the recipient and the rewrite share
    # them); after the hand-off: the participants (the message's addresses as references,
    # read after the hand-off so a participant masked meanwhile is never recorded by its
    # real address) and the timeline write. It was 5: the alias was read again at DATA.
    assert calls == {"rcpt": 1, "data": 1, "delivered": 2}


def test_data_without_rcpt_reads_the_alias_itself(
    relay: Relay, storage: CountingStorage, customer: Alias
) -> None:
    relay.check_recipient(customer.address)
    storage.calls.clear()
    other = Relay(relay.tracker, authenticator=AuthenticationResults(MTA))  # never saw RCPT
    (outcome,) = other.handle(CARRIER, [customer.address], carrier_mail("x", 2)).outcomes
    assert outcome.accepted
    assert storage.calls["get"] == 1
    assert storage.calls["aliases"] == 1


def test_revoked_between_rcpt_and_data_is_refused(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    assert relay.check_recipient(customer.address) is None
    tracker.revoke(customer)
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail("x", 3)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert "revoked" in outcome.reason


def test_ended_between_rcpt_and_data_is_refused(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    assert relay.check_recipient(customer.address) is None
    tracker.end(ORDER, grace=timedelta(0))
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail("x", 4)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert "ended" in outcome.reason


def test_expired_between_rcpt_and_data_is_refused(
    relay: Relay, clock: FrozenClock, customer: Alias
) -> None:
    assert relay.check_recipient(customer.address) is None
    clock.advance(timedelta(days=31))
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail("x", 5)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")


def test_forgotten_between_rcpt_and_data_is_refused(
    relay: Relay, tracker: Tracker, customer: Alias
) -> None:
    assert relay.check_recipient(customer.address) is None
    tracker.forget("cliente@example.com.br")
    (outcome,) = relay.handle(CARRIER, [customer.address], carrier_mail("x", 6)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert outcome.deliver_to is None
