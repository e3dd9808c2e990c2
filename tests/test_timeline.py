"""Timeline: events, messages, notifications, lifecycle tied to the order, JSON export."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from ct_alias import (
    AliasEvent,
    AliasStatus,
    Direction,
    EntryKind,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    MissingParticipant,
    OrderEvent,
    Policy,
    RevokedAlias,
    Role,
    Tracker,
    UnknownAlias,
)
from ct_alias.timeline import TimelineEntry

from .conftest import DOMAIN, START

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mail-parser"
STEPS = [
    OrderEvent.PAYMENT_APPROVED,
    OrderEvent.PREPARING_DELIVERY,
    OrderEvent.INVOICED,
    OrderEvent.DISPATCHED,
    OrderEvent.DELIVERED,
]


@pytest.fixture
def shop(clock: FrozenClock) -> Tracker:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(
            domain=DOMAIN,
            end_on={OrderEvent.DELIVERED, OrderEvent.CANCELED},
            grace=timedelta(days=7),
        ),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    tracker.set_policy("simple-shop", Policy(domain=DOMAIN, strategy="simple"))
    return tracker


def raw(
    from_: str, to: str, subject: str = "Hello", body: str = "Body text", **headers: str
) -> bytes:
    lines = [f"From: {from_}", f"To: {to}", f"Subject: {subject}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


# -- events --------------------------------------------------------------------


def test_record_event(shop: Tracker, clock: FrozenClock) -> None:
    entry = shop.record_event("o1", OrderEvent.PAYMENT_APPROVED, data={"amount": "10.00"})
    assert (entry.kind, entry.name, entry.at, entry.data) == (
        EntryKind.EVENT,
        "payment-approved",
        clock.now(),
        {"amount": "10.00"},
    )
    assert entry.seq is not None
    custom = shop.record_event("o1", "refund-requested", at=START - timedelta(hours=1))
    assert custom.name == "refund-requested"
    assert [e.name for e in shop.timeline("o1").entries] == ["refund-requested", "payment-approved"]
    assert shop.record_event("o1", "invoiced").name == OrderEvent.INVOICED


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"event": ""}, "event"),
        ({"event": "x" * 65}, "event"),
        ({"event": "a\r\nb"}, "event"),
        ({"event": 5}, "event"),
        ({"event": "ok", "data": {"x": object()}}, "data"),
        ({"event": "ok", "data": {"x": float("nan")}}, "data"),
        ({"event": "ok", "data": ["not", "a", "mapping"]}, "data"),
        ({"event": "ok", "data": {"x": "y" * 70_000}}, "data"),
        ({"event": "ok", "at": datetime(2026, 1, 1)}, "at"),
        ({"event": "ok", "at": "yesterday"}, "at"),
    ],
)
def test_bad_events(shop: Tracker, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        shop.record_event("o1", **kwargs)
    assert info.value.name == name
    assert shop.timeline("o1").entries == ()


def test_lifecycle_events_are_recorded(shop: Tracker) -> None:
    alias = shop.mask("maria@example.com", conversation="o1")
    shop.mask("maria@example.com", conversation="o1")  # idempotent: no second event
    shop.unmask(alias.address)  # no reason: a plain lookup, not recorded
    shop.unmask(alias.address, reason="carrier notification")
    shop.revoke(alias, reason="leaked")
    names = [(e.name, e.data.get("reason")) for e in shop.timeline("o1").events]
    assert names == [
        ("alias-created", None),
        ("alias-unmasked", "carrier notification"),
        ("alias-revoked", "leaked"),
    ]
    for event in shop.timeline("o1").events:
        assert event.data["ref"] == alias.key
        assert "maria" not in json.dumps(event.data)


# -- lifecycle -----------------------------------------------------------------


def test_ending_event_with_grace(shop: Tracker, clock: FrozenClock) -> None:
    customer = shop.mask("maria@example.com", conversation="o1")
    store = shop.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    other = shop.mask("maria@example.com", conversation="o2")
    shop.record_event("o1", OrderEvent.DISPATCHED)
    assert shop.unmask(customer.address).status is AliasStatus.ACTIVE
    shop.record_event("o1", OrderEvent.DELIVERED)
    ended = shop.unmask(customer.address)
    assert ended.status is AliasStatus.ENDED
    assert ended.ends_at == clock.now() + timedelta(days=7)
    clock.advance(timedelta(days=7))
    for alias in (customer, store):
        with pytest.raises(ExpiredAlias) as info:
            shop.unmask(alias.address)
        assert info.value.reason is ExpiryReason.ENDED
        assert info.value.expired_at == START + timedelta(days=7)
    assert shop.unmask(other.address) == other  # another order is untouched
    events = [e.name for e in shop.timeline("o1").events]
    assert events.count(AliasEvent.ENDED) == 2


def test_default_policy_ends_nothing(tracker: Tracker, clock: FrozenClock) -> None:
    alias = tracker.mask("maria@example.com", conversation="o1")
    for step in STEPS:
        tracker.record_event("o1", step)
    clock.advance(timedelta(days=59))
    assert tracker.unmask(alias.address).status is AliasStatus.ACTIVE


def test_policy_without_grace_ends_at_once(clock: FrozenClock) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN, end_on={"order-closed"}),
        clock=clock,
    )
    alias = tracker.mask("maria@example.com", conversation="o1")
    tracker.record_event("o1", "order-closed")
    with pytest.raises(ExpiredAlias):
        tracker.unmask(alias.address)
    fresh = tracker.mask("maria@example.com", conversation="o1")
    assert fresh.address != alias.address


def test_reactivation(shop: Tracker, clock: FrozenClock) -> None:
    alias = shop.mask("maria@example.com", conversation="o1")
    shop.record_event("o1", OrderEvent.CANCELED)
    clock.advance(timedelta(days=10))
    with pytest.raises(ExpiredAlias):
        shop.unmask(alias.address)
    (reopened,) = shop.reactivate("o1", for_=timedelta(days=3))
    assert reopened.status is AliasStatus.ACTIVE
    assert reopened.ends_at == clock.now() + timedelta(days=3)
    assert shop.unmask(alias.address).status is AliasStatus.ACTIVE
    clock.advance(timedelta(days=3))
    with pytest.raises(ExpiredAlias):
        shop.unmask(alias.address)
    assert [e.name for e in shop.timeline("o1").events][-1] == AliasEvent.REACTIVATED


def test_reactivation_is_bounded_by_expiry(shop: Tracker, clock: FrozenClock) -> None:
    alias = shop.mask("maria@example.com", conversation="o1")
    shop.end("o1", grace=timedelta(0))
    clock.advance(timedelta(days=55))
    (reopened,) = shop.reactivate("o1", for_=timedelta(days=30))
    assert reopened.ends_at == alias.expires_at
    clock.advance(timedelta(days=6))
    assert shop.reactivate("o1", for_=timedelta(days=30)) == []  # expired: stays dead
    with pytest.raises(InvalidArgument):
        shop.reactivate("o1", for_=timedelta(0))
    with pytest.raises(InvalidArgument):
        shop.reactivate("o1", for_=timedelta(days=4000))


def test_revoked_aliases_stay_dead(shop: Tracker, clock: FrozenClock) -> None:
    alias = shop.mask("maria@example.com", conversation="o1")
    revoked = shop.revoke(alias.address.upper())
    assert revoked.status is AliasStatus.REVOKED
    assert revoked.revoked_at == clock.now()
    assert shop.revoke(alias) == revoked  # idempotent
    with pytest.raises(RevokedAlias) as info:
        shop.unmask(alias.address)
    assert info.value.expired_at == clock.now()
    assert isinstance(info.value, ExpiredAlias)
    shop.record_event("o1", OrderEvent.CANCELED)
    assert shop.reactivate("o1", for_=timedelta(days=1)) == []
    fresh = shop.mask("maria@example.com", conversation="o1")
    assert fresh.address != alias.address
    assert shop.unmask(fresh.address) == fresh


def test_revoke_errors(shop: Tracker, clock: FrozenClock) -> None:
    with pytest.raises(ForgedAlias):
        shop.revoke("1" + "0" * 39 + "@" + DOMAIN)
    other = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    stranger = other.mask("x@example.com", conversation="o9")
    with pytest.raises(UnknownAlias):
        shop.revoke(stranger.address)


def test_purge(shop: Tracker, clock: FrozenClock) -> None:
    old = shop.mask("maria@example.com", conversation="o1")
    leaked = shop.mask("joao@example.com", conversation="o1")
    shop.revoke(leaked)
    keep = shop.mask("ana@example.com", conversation="o2")
    clock.advance(timedelta(days=1))
    assert shop.purge(older_than=timedelta(days=2)) == 0
    assert shop.purge() == 1  # the revoked one
    with pytest.raises(RevokedAlias):
        shop.unmask(leaked.address)  # a tombstone, not unknown
    clock.advance(timedelta(days=60))
    assert shop.purge(older_than=timedelta(days=30)) == 0
    clock.advance(timedelta(days=30))
    assert shop.purge(older_than=timedelta(days=30)) == 2
    assert shop.aliases("o1") == []
    with pytest.raises(ExpiredAlias):
        shop.unmask(old.address)
    assert keep.address not in shop.timeline("o2").to_json()
    with pytest.raises(InvalidArgument):
        shop.purge(older_than=timedelta(days=-1))


# -- messages ------------------------------------------------------------------


def test_record_message_keeps_references_not_addresses(shop: Tracker) -> None:
    customer = shop.mask("Maria.Silva@example.com", conversation="o1")
    store = shop.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    message = raw(
        f"Loja <{store.address}>",
        "Maria Silva <maria.silva@EXAMPLE.com>, outsider@elsewhere.example.org",
        subject="=?utf-8?q?Pedido_faturado_=E2=9C=93?=",
        Message_ID="<abc@ct.example.com>",
        Cc='"maria.silva@example.com" <maria.silva@example.com>',
    )
    entry = shop.record_message("o1", message, direction=Direction.OUTBOUND)
    assert entry.kind is EntryKind.MESSAGE
    assert entry.name == "outbound"
    data = entry.data
    assert data["subject"] == "Pedido faturado ✓"
    assert data["from"] == [{"name": "Loja", "ref": store.key, "role": "store"}]
    assert data["to"] == [
        {"name": "Maria Silva", "ref": customer.key, "role": "customer"},
        {"name": "", "address": "outsider@elsewhere.example.org"},
    ]
    assert data["cc"] == [{"name": "", "ref": customer.key, "role": "customer"}]
    assert "maria.silva@" not in json.dumps(data).lower()
    exported = shop.timeline("o1").to_dict()
    (msg,) = exported["messages"]
    assert msg["from"] == {
        "name": "Loja",
        "emailAlias": store.address,
        "role": "store",
        "email": None,
    }
    assert msg["to"][0]["emailAlias"] == customer.address
    assert msg["to"][1] == {
        "name": "",
        "email": "outsider@elsewhere.example.org",
        "emailAlias": None,
        "role": None,
    }
    real = shop.timeline("o1").to_dict(include_real_addresses=True)["messages"][0]
    assert real["to"][0]["email"] == "Maria.Silva@example.com"


def test_duplicates_are_recorded_once(shop: Tracker) -> None:
    with_id = raw("a@example.com", "b@example.com", Message_ID="<1@x>")
    first = shop.record_message("o1", with_id, direction="inbound")
    again = shop.record_message("o1", with_id.replace(b"Body", b"Other"), direction="inbound")
    assert again == first
    without_id = raw("a@example.com", "b@example.com")
    one = shop.record_message("o1", without_id, direction="inbound")
    assert shop.record_message("o1", without_id, direction="inbound") == one
    assert shop.record_message("o2", without_id, direction="inbound") != one
    assert len(shop.timeline("o1").messages) == 2


def test_record_email_message_object(shop: Tracker) -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = "b@example.com"
    msg["Subject"] = "Olá"
    msg.set_content("Seu pedido foi enviado.\n")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="nota.pdf")
    entry = shop.record_message("o1", msg, direction=Direction.OUTBOUND)
    assert entry.data["subject"] == "Olá"
    assert entry.data["firstWords"].startswith("Seu pedido foi enviado.")
    assert entry.data["attachmentNames"] == ["nota.pdf"]
    assert entry.data["hasAttachment"] is True


@pytest.mark.parametrize("bad", ["text", 42, None])
def test_record_message_rejects_non_messages(shop: Tracker, bad: object) -> None:
    with pytest.raises(InvalidArgument):
        shop.record_message("o1", bad, direction="inbound")  # type: ignore[arg-type]


def test_record_message_rejects_bad_direction(shop: Tracker) -> None:
    with pytest.raises(InvalidArgument):
        shop.record_message("o1", b"x", direction="sideways")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
@pytest.mark.parametrize(
    "path", sorted(CORPUS.glob("*.*")) if CORPUS.is_dir() else [], ids=lambda p: p.name
)
def test_corpus_messages_are_recorded(shop: Tracker, path: Path) -> None:
    if path.suffix not in {".eml", ".msg"}:
        pytest.skip("not a message")
    data = path.read_bytes()
    entry = shop.record_message("o1", data, direction="inbound")
    assert entry.data["size"] == len(data)
    json.dumps(shop.timeline("o1").to_dict())


# -- notifications -------------------------------------------------------------


def test_notify_needs_participants(shop: Tracker) -> None:
    with pytest.raises(MissingParticipant) as info:
        shop.notify("o1", OrderEvent.PAYMENT_APPROVED, subject="s", text="t")
    assert info.value.role == "customer"
    shop.mask("maria@example.com", conversation="o1")
    with pytest.raises(MissingParticipant) as info:
        shop.notify("o1", OrderEvent.PAYMENT_APPROVED, subject="s", text="t")
    assert info.value.role == "store"
    assert isinstance(info.value, LookupError)


def test_notify_composes_from_the_store_alias(shop: Tracker) -> None:
    customer = shop.mask("Maria@example.com", conversation="o1", store="simple-shop")
    store = shop.mask(
        "vendas@loja.example.com", conversation="o1", store="simple-shop", role=Role.STORE
    )
    msg = shop.notify(
        "o1",
        OrderEvent.DISPATCHED,
        subject="Seu pedido foi despachado",
        text="Olá Maria, seu pedido saiu para entrega.",
        html="<p>Olá Maria, seu pedido <b>saiu</b> para entrega.</p>",
        from_name="Loja Exemplo",
        store="simple-shop",
    )
    assert msg["From"].addresses[0].addr_spec == store.address
    assert msg["From"].addresses[0].display_name == "Loja Exemplo"
    assert msg["Reply-To"] == store.address
    assert msg["To"] == "Maria@example.com"
    assert msg["Message-ID"].endswith("@" + DOMAIN + ">")
    assert msg.get_body(("plain",)).get_content().startswith("Olá Maria")  # type: ignore[union-attr]
    assert msg.get_body(("html",)) is not None
    wire = msg.as_bytes()
    assert b"\r\n" in wire
    reparsed = message_from_bytes(wire, policy=default_policy)
    assert reparsed["Subject"] == "Seu pedido foi despachado"
    timeline = shop.timeline("o1", store="simple-shop")
    assert [e.name for e in timeline.events][-1] == "dispatched"
    (recorded,) = timeline.messages
    assert recorded.data["to"] == [{"name": "", "ref": customer.key, "role": "customer"}]
    assert recorded.data["messageId"] == msg["Message-ID"].strip("<>")


def test_notify_rejects_header_injection(shop: Tracker) -> None:
    shop.mask("maria@example.com", conversation="o1")
    shop.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    with pytest.raises(InvalidArgument):
        shop.notify("o1", "x", subject="Hi\r\nBcc: evil@example.com", text="t")
    with pytest.raises(InvalidArgument):
        shop.notify("o1", "x", subject="Hi", text=b"bytes")  # type: ignore[call-overload]


# -- reading -------------------------------------------------------------------


def test_pagination(shop: Tracker, clock: FrozenClock) -> None:
    for i in range(7):
        shop.record_event("o1", f"step-{i}")
        if i % 2:
            clock.advance(timedelta(seconds=1))
    names = []
    after = None
    pages = 0
    while True:
        page = shop.timeline("o1", limit=3, after=after)
        names += [e.name for e in page.entries]
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert names == [f"step-{i}" for i in range(7)]
    assert pages == 3
    with pytest.raises(InvalidArgument):
        shop.timeline("o1", after="garbage")
    with pytest.raises(InvalidArgument):
        shop.timeline("o1", limit=0)


def test_whole_order_scenario(shop: Tracker, clock: FrozenClock) -> None:
    order = "1077540530277-01"
    customer = shop.mask("Maria.Silva@Example.com.br", conversation=order)
    store = shop.mask("vendas@loja.example.com", conversation=order, role=Role.STORE)
    sent = []
    for step in STEPS[:4]:
        sent.append(
            shop.notify(
                order,
                step,
                subject=f"Pedido: {step.value}",
                text=f"Atualização do seu pedido: {step.value}.",
            )
        )
        clock.advance(timedelta(hours=6))
    # a carrier writes to the customer's alias; it gets a reverse alias
    carrier = shop.mask(
        "rastreio@transportadora.example.net", conversation=order, role=Role.CONTACT
    )
    shop.record_message(
        order,
        raw(
            f"Transportadora <{carrier.address}>",
            customer.address,
            subject="Entrega agendada",
            body="Sua entrega chega amanhã.",
            Message_ID="<track-1@transportadora.example.net>",
        ),
        direction=Direction.OUTBOUND,
    )
    clock.advance(timedelta(hours=1))
    # the customer replies to the carrier's alias
    shop.record_message(
        order,
        raw(
            f"Maria <{customer.address}>",
            carrier.address,
            subject="Re: Entrega agendada",
            body="Obrigada!",
            Message_ID="<reply-1@example.com.br>",
            In_Reply_To="<track-1@transportadora.example.net>",
        ),
        direction=Direction.INBOUND,
    )
    sent.append(
        shop.notify(
            order, OrderEvent.DELIVERED, subject="Pedido entregue", text="Seu pedido foi entregue."
        )
    )  # ends with 7 days of grace
    delivered_at = clock.now()
    clock.advance(timedelta(days=8))
    with pytest.raises(ExpiredAlias):
        shop.unmask(customer.address)
    shop.reactivate(order, for_=timedelta(days=2))
    assert shop.unmask(customer.address).status is AliasStatus.ACTIVE

    exported = json.loads(shop.timeline(order).to_json())
    assert exported["formatVersion"] == 1
    assert exported["conversation"] == order
    assert exported["nextAfter"] is None
    participants = exported["participants"]
    assert [
        (p["role"], p["emailAlias"], p["aliasMaskType"], p["status"]) for p in participants
    ] == [
        ("customer", customer.address, "complex", "active"),
        ("store", store.address, "complex", "active"),
        ("contact", carrier.address, "complex", "active"),
    ]
    assert participants[0]["expiresAt"] == "2026-03-02T00:00:00Z"
    assert "realAddress" not in participants[0]
    messages = exported["messages"]
    assert len(messages) == 7
    assert [m["direction"] for m in messages] == ["outbound"] * 5 + ["inbound", "outbound"]
    first = messages[0]
    assert first["from"]["emailAlias"] == store.address
    assert first["to"] == [
        {"name": "", "email": None, "emailAlias": customer.address, "role": "customer"}
    ]
    assert first["subject"] == "Pedido: payment-approved"
    assert first["firstWords"] == "Atualização do seu pedido: payment-approved."
    assert first["hasAttachment"] is False
    assert first["attachmentNames"] == []
    assert first["messageId"] == sent[0]["Message-ID"].strip("<>")
    carrier_msg = messages[4]
    assert carrier_msg["from"] == {
        "name": "Transportadora",
        "email": None,
        "emailAlias": carrier.address,
        "role": "contact",
    }
    reply = messages[5]
    assert reply["inReplyTo"] == ["track-1@transportadora.example.net"]
    assert reply["to"][0]["role"] == "contact"
    events = [e["event"] for e in exported["events"]]
    assert events[:3] == ["alias-created"] * 2 + ["payment-approved"]
    assert events.count("alias-created") == 3
    assert [e for e in events if e in {s.value for s in STEPS}] == [s.value for s in STEPS]
    assert events.count("alias-ended") == 3
    assert events.count("alias-reactivated") == 3
    ended = next(e for e in exported["events"] if e["event"] == "alias-ended")
    assert ended["data"]["endsAt"] == (delivered_at + timedelta(days=7)).isoformat().replace(
        "+00:00", "Z"
    )
    assert ended["participant"]["emailAlias"] == customer.address
    text = json.dumps(exported)
    assert "maria.silva@" not in text.lower()
    assert "vendas@" not in text
    full = shop.timeline(order).to_dict(include_real_addresses=True)
    assert full["participants"][0]["realAddress"] == "Maria.Silva@example.com.br"


def test_notify_never_sends_from_an_alias_whose_key_was_retired(clock: FrozenClock) -> None:
    store = MemoryStorage()
    old = Tracker(
        storage=store,
        keys=["k5buCDH-IRDO9K7JX-CPg1Vm5bpDsro0S28TKHnpBg0"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    old.mask("maria@example.com", conversation="o1")
    old.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    new = Tracker(
        storage=store,
        keys=["alFruyCDW-ZYs9AYqdp2jaf8p2TgXTWMr8-vLrgJy2E"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    with pytest.raises(MissingParticipant):
        new.notify("o1", OrderEvent.DISPATCHED, subject="s", text="t")
    new.mask("maria@example.com", conversation="o1")
    shop = new.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    message = new.notify("o1", OrderEvent.DISPATCHED, subject="s", text="t")
    assert message["From"].addresses[0].addr_spec == shop.address
    assert new.unmask(shop.address) == shop


def test_an_unstored_entry_has_no_cursor() -> None:
    entry = TimelineEntry("o1", EntryKind.EVENT, "invoiced", START, store="shop")
    with pytest.raises(ValueError, match="no cursor"):
        _ = entry.cursor
