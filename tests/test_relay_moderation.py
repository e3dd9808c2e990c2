"""Moderation through Relay.handle: allow, flag (delivered, marked), refuse (550), fail (451)."""

from __future__ import annotations

import logging

import pytest

from ct_alias import Alias, InvalidArgument, Role, TimelineEntry, Tracker
from ct_alias.auth import AuthenticationResults
from ct_alias.mail import split_message
from ct_alias.moderation import Action, MessageView, Verdict
from ct_alias.moderators import AttachmentSize, AttachmentTypes, ContactDetails
from ct_alias.relay import Relay
from ct_alias.vocabulary import ModerationEvent

from .test_moderation import attachment, multipart, text_part

ORDER = "order-1"
CUSTOMER = "maria.silva@example.com.br"
SHOP = "vendas@loja.example.com"
MTA = "mx.ct.example.com"


@pytest.fixture
def customer(tracker: Tracker) -> Alias:
    return tracker.mask(CUSTOMER, conversation=ORDER)


@pytest.fixture
def shop(tracker: Tracker) -> Alias:
    return tracker.mask(SHOP, conversation=ORDER, role=Role.STORE)


def from_customer(shop: Alias, body: bytes, *extra: str) -> bytes:
    head = [
        f"Authentication-Results: {MTA}; dmarc=pass header.from=example.com.br",
        f"From: Maria <{CUSTOMER}>",
        f"To: {shop.address}",
        "Subject: Meu pedido",
        "Message-ID: <m1@example.com.br>",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n").encode() + body


def plain(text: str) -> bytes:
    return b"\r\n" + text.encode() + b"\r\n"


def refusals(tracker: Tracker) -> list[TimelineEntry]:
    return [e for e in tracker.timeline(ORDER).events if e.name == ModerationEvent.REFUSED]


def relay_with(tracker: Tracker, *moderators: object) -> Relay:
    return Relay(
        tracker,
        authenticator=AuthenticationResults(MTA),
        moderators=moderators,  # type: ignore[arg-type]
    )


def test_allowed_mail_is_delivered_unmarked(tracker: Tracker, customer: Alias, shop: Alias) -> None:
    relay = relay_with(tracker, ContactDetails())
    data = from_customer(shop, plain("Obrigada, chegou tudo certo."))
    (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert outcome.accepted
    relay.delivered(outcome)
    (entry,) = tracker.timeline(ORDER).messages
    assert "moderation" not in entry.data["relay"]
    assert "moderation" not in tracker.timeline(ORDER).to_dict()["messages"][0]


def test_a_flagged_message_is_delivered_as_it_came_and_marked(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    relay = relay_with(tracker, ContactDetails())
    data = from_customer(shop, plain("Me chama no zap (11) 98765-4321"))
    (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert (outcome.code, outcome.accepted) == (250, True)
    assert outcome.message is not None
    assert split_message(outcome.message).body == split_message(data).body  # never rewritten
    relay.delivered(outcome)
    timeline = tracker.timeline(ORDER)
    (entry,) = timeline.messages
    flag = {
        "moderator": "contact-details",
        "action": "flag",
        "reason": "contact details in the message: a phone number",
    }
    assert entry.data["relay"]["moderation"] == [flag]
    assert timeline.to_dict()["messages"][0]["moderation"] == [flag]
    html = timeline.to_html()
    assert "ct-flagged" in html
    assert "flagged: contact details in the message: a phone number (contact-details)" in html


def test_a_refused_message_is_550_with_its_reason_and_recorded(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    relay = relay_with(tracker, ContactDetails(), AttachmentTypes())
    body = multipart(text_part("segue"), attachment("nota.pdf.exe", "application/pdf", b"MZ"))
    data = from_customer(shop, b"") + body.split(b"\r\n", 1)[1]  # the multipart's header joins
    (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert (outcome.code, outcome.status) == (550, "5.7.1")
    assert outcome.reason == (
        "message refused: attachment type not allowed: application/pdf (nota.pdf.exe)"
    )
    assert outcome.message is None
    timeline = tracker.timeline(ORDER)
    assert timeline.messages == ()
    (event,) = refusals(tracker)
    assert event.name == ModerationEvent.REFUSED.value == "message-refused"
    assert event.data["moderator"] == "attachment-types"
    assert event.data["reason"] == "attachment type not allowed: application/pdf (nota.pdf.exe)"
    assert (event.data["code"], event.data["status"], event.data["ref"]) == (550, "5.7.1", shop.key)
    (exported,) = [e for e in timeline.to_dict()["events"] if e["event"] == "message-refused"]
    assert exported["participant"]["role"] == "store"  # the ref is resolved, as alias events'
    html = timeline.to_html()
    assert "refused by moderation" in html
    assert "ct-rejected" in html


def test_the_reason_in_the_reply_is_ascii_and_the_timeline_keeps_it_whole(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    def portuguese(view: MessageView) -> Verdict:
        return Verdict.refuse("não é permitido enviar anexos")

    (outcome,) = (
        relay_with(tracker, portuguese)
        .handle(CUSTOMER, [shop.address], from_customer(shop, plain("oi")))
        .outcomes
    )
    assert outcome.reply == "550 5.7.1 message refused: nao e permitido enviar anexos"
    (event,) = refusals(tracker)
    assert event.data["reason"] == "não é permitido enviar anexos"


def test_a_reason_cannot_inject_smtp_lines(tracker: Tracker, customer: Alias, shop: Alias) -> None:
    def sneaky(view: MessageView) -> Verdict:
        return Verdict(Action.REFUSE, "no\r\n250 2.0.0 OK")

    (outcome,) = (
        relay_with(tracker, sneaky)
        .handle(CUSTOMER, [shop.address], from_customer(shop, plain("oi")))
        .outcomes
    )
    assert outcome.reply == "550 5.7.1 message refused: no 250 2.0.0 OK"


def test_contact_details_can_refuse(tracker: Tracker, customer: Alias, shop: Alias) -> None:
    relay = relay_with(tracker, ContactDetails(action="refuse"))
    data = from_customer(shop, plain("https://wa.me/5511987654321"))
    (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert outcome.code == 550
    assert "messaging app link" in outcome.reason


def test_a_failing_moderator_is_451_logged_without_addresses(
    tracker: Tracker, customer: Alias, shop: Alias, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(view: MessageView) -> Verdict:
        raise RuntimeError(CUSTOMER)

    relay = relay_with(tracker, ContactDetails(), broken)
    data = from_customer(shop, plain("(11) 98765-4321"))
    with caplog.at_level(logging.INFO, logger="ct_alias"):
        (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")
    assert outcome.message is None
    assert tracker.timeline(ORDER).messages == ()
    assert refusals(tracker) == []
    assert "moderator 'broken' failed" in caplog.text
    assert "RuntimeError" in caplog.text
    assert CUSTOMER not in caplog.text
    assert "example.com.br" not in caplog.text


def test_moderators_see_the_recipient_and_never_an_address(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    seen: list[MessageView] = []

    def spy(view: MessageView) -> Verdict:
        seen.append(view)
        return Verdict.allow()

    data = from_customer(shop, plain(f"sou {CUSTOMER}, loja {shop.address}"))
    (outcome,) = relay_with(tracker, spy).handle(CUSTOMER, [shop.address], data).outcomes
    assert outcome.accepted
    (view,) = seen
    assert (view.store, view.conversation, view.direction) == ("default", ORDER, "inbound")
    assert (view.recipient_role, view.sender_verified) == (Role.STORE, True)
    assert view.texts == ("sou [address], loja [alias]",)
    assert view.addresses == 1
    assert "example.com" not in repr(view)


def test_each_recipient_is_judged_the_message_is_read_once(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    views: list[MessageView] = []

    def only_to_customers(view: MessageView) -> Verdict:
        views.append(view)
        if view.recipient_role is Role.STORE:
            return Verdict.refuse("the store takes no mail here")
        return Verdict.allow()

    data = from_customer(shop, plain("oi"))
    result = relay_with(tracker, only_to_customers).handle(
        SHOP, [shop.address, customer.address], data
    )
    assert [o.code for o in result.outcomes] == [550, 250]
    assert views[0].texts is views[1].texts  # one parse, two recipients


def test_size_and_structure_refusals_come_before_moderation(
    tracker: Tracker, customer: Alias, shop: Alias
) -> None:
    calls: list[str] = []

    def spy(view: MessageView) -> Verdict:
        calls.append("called")
        return Verdict.allow()

    relay = Relay(tracker, moderators=[spy], max_size=100)
    (outcome,) = relay.handle(
        CUSTOMER, [shop.address], from_customer(shop, plain("x" * 200))
    ).outcomes
    assert outcome.code == 552
    assert calls == []


def test_attachment_size_through_the_relay(tracker: Tracker, customer: Alias, shop: Alias) -> None:
    body = multipart(attachment("foto.png", "image/png", b"x" * 3000))
    data = from_customer(shop, b"") + body.split(b"\r\n", 1)[1]
    relay = relay_with(tracker, AttachmentSize(2048))
    (outcome,) = relay.handle(CUSTOMER, [shop.address], data).outcomes
    assert (outcome.code, outcome.reason) == (
        550,
        "message refused: attachment larger than 2 KiB: image/png (foto.png), 3000 bytes",
    )


def test_a_refusal_is_recorded_once_an_hour(tracker: Tracker, customer: Alias, shop: Alias) -> None:
    relay = relay_with(tracker, ContactDetails(action="refuse"))
    for n in range(3):
        data = from_customer(shop, plain(f"t.me/loja{n}")).replace(b"<m1@", f"<m{n}@".encode())
        assert relay.handle(CUSTOMER, [shop.address], data).outcomes[0].code == 550
    assert len(refusals(tracker)) == 1


def test_the_moderators_argument(tracker: Tracker) -> None:
    assert Relay(tracker).moderators == ()
    assert "moderators=2" in repr(Relay(tracker, moderators=[ContactDetails(), AttachmentSize()]))
    for bad in ("contact-details", [1], 3):
        with pytest.raises(InvalidArgument):
            Relay(tracker, moderators=bad)  # type: ignore[arg-type]


def test_without_moderators_no_view_is_built(
    tracker: Tracker, customer: Alias, shop: Alias, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ct_alias._relay_moderation as step

    def never(*args: object) -> None:
        raise AssertionError("a relay without moderators read the message for them")

    monkeypatch.setattr(step, "read_view", never)
    (outcome,) = (
        Relay(tracker)
        .handle(CUSTOMER, [shop.address], from_customer(shop, plain("(11) 98765-4321")))
        .outcomes
    )
    assert outcome.accepted
