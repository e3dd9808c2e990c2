"""``ct-alias demo``: a whole order, played on a throw-away SQLite file."""

from __future__ import annotations

import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from ._render import render_timeline
from .aliases import Alias, Role
from .auth import AuthenticationResults
from .clock import FrozenClock
from .moderators import ContactDetails
from .policy import Policy
from .relay import Outcome, Relay
from .storage.registry import storage_from_url
from .timeline import OrderEvent
from .tracker import Tracker

__all__ = ["run_demo"]

DOMAIN = "ct.example.com"
CUSTOMER = "Maria.Silva@Example.com.br"
CARRIER = "rastreio@transportadora.example.net"
#: The receiving MTA whose Authentication-Results the demo's relay trusts.
MTA = "mx.ct.example.com"
ORDERS = {"loja-complexa": "1077540530277-01", "loja-simples": "1077540530277-02"}
#: The store of each order (conversations are per store).
STORE_OF = {order: shop for shop, order in ORDERS.items()}
STEPS = [
    (OrderEvent.PAYMENT_APPROVED, "Pagamento aprovado", "Seu pagamento foi aprovado."),
    (OrderEvent.PREPARING_DELIVERY, "Preparando entrega", "Estamos preparando seu pedido."),
    (OrderEvent.INVOICED, "Pedido faturado", "Sua nota fiscal foi emitida."),
    (OrderEvent.DISPATCHED, "Pedido despachado", "Seu pedido saiu para entrega."),
    (OrderEvent.DELIVERED, "Pedido entregue", "Seu pedido foi entregue. Obrigado!"),
]

#: The demo's last three lines: what to try next.
NEXT_STEPS = (
    (
        "next: make keys: export CT_ALIAS_KEYS=$(ct-alias keys generate) "
        "CT_ALIAS_INDEX_KEY=$(ct-alias keys generate) CT_ALIAS_DOMAIN=ct.example.com"
    ),
    (
        "next: keep aliases in SQLite: ct-alias db upgrade && "
        "ct-alias mask maria@example.com -c order-1"
    ),
    (
        "next: see the order as a page: ct-alias timeline order-1 --html > order.html "
        "(docs: https://ct-alias.readthedocs.io/)"
    ),
)


def _mail(
    sender: str, to: str, subject: str, body: str, message_id: str, *, passed: str | None = None
) -> bytes:
    """A message; ``passed`` is the domain the receiving MTA found DMARC-aligned, if any."""
    verdict = (
        f"Authentication-Results: {MTA}; dmarc=pass header.from={passed}\r\n" if passed else ""
    )
    return (
        f"{verdict}From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Thu, 01 Jan 2026 12:00:00 +0000\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def run_demo(out: TextIO, *, db: str | None = None, as_json: bool = False) -> int:
    """Play the demo order and print each step; return the exit status."""
    with tempfile.TemporaryDirectory(prefix="ct-alias-demo-") as tmp:
        _Demo(out, db or f"sqlite:///{Path(tmp) / 'demo.db'}", as_json=as_json).play()
    return 0


class _Demo:
    """The demo's cast (a tracker, a relay, a clock) and its acts."""

    def __init__(self, out: TextIO, url: str, *, as_json: bool) -> None:
        self.out = out
        self.url = url
        self.as_json = as_json
        store = storage_from_url(url)
        upgrade = getattr(store, "upgrade", None)
        if upgrade is not None:
            upgrade()
        self.clock = FrozenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
        self.tracker = Tracker(
            storage=store,
            # fresh keys for every run, as `ct-alias keys generate` makes them
            keys=[secrets.token_urlsafe(32)],
            default_policy=Policy(domain=DOMAIN),
            clock=self.clock,
            index_key=secrets.token_urlsafe(32),
        )
        self.tracker.set_policy("loja-simples", Policy(domain=DOMAIN, strategy="simple"))
        # the complex store enforces conversation rules (states, blocked senders)
        self.tracker.set_policy("loja-complexa", Policy(domain=DOMAIN, conversation_rules=True))
        # a moderator flags contact details shared outside the conversation
        self.relay = Relay(
            self.tracker, authenticator=AuthenticationResults(MTA), moderators=[ContactDetails()]
        )
        self.started = self.clock.now()
        self.customers: dict[str, Alias] = {}

    def say(self, text: str = "") -> None:
        if not self.as_json:
            print(text, file=self.out)

    def relay_one(self, sender: str, alias: str, data: bytes) -> Outcome:
        (outcome,) = self.relay.handle(sender, [alias], data).outcomes
        if outcome.accepted:  # the demo delivers nowhere: the hand-off always succeeds
            self.relay.delivered(outcome)
        return outcome

    def play(self) -> None:
        self.say(f"ct_alias demo: one customer, two stores, storage {self.url}")
        self.mask_participants()
        self.order_flow(ORDERS["loja-complexa"])
        self.simple_store(ORDERS["loja-simples"])
        self.forged_store(ORDERS["loja-complexa"])
        self.blocked_sender(ORDERS["loja-complexa"])
        self.moderated_and_answered(ORDERS["loja-complexa"])
        self.refusals(ORDERS["loja-complexa"])
        self.show_timelines()
        self.say()
        for line in NEXT_STEPS:
            self.say(line)

    def mask_participants(self) -> None:
        for shop, order in ORDERS.items():
            strategy = self.tracker.policy_for(shop).strategy
            self.say(f"\n== {shop} ({strategy} mask), order {order} ==")
            customer = self.tracker.mask(CUSTOMER, conversation=order, store=shop)
            sender = f"vendas@{shop}.example.com"
            shop_alias = self.tracker.mask(sender, conversation=order, store=shop, role=Role.STORE)
            self.customers[order] = customer
            self.say(f"customer  {CUSTOMER:<36} -> {customer.address}")
            self.say(f"store     {sender:<36} -> {shop_alias.address}")

    def order_flow(self, order: str) -> None:
        tracker, customer = self.tracker, self.customers[order]
        self.say(f"\n== the order flow of {order} ==")
        for step, subject, text in STEPS[:4]:
            message = tracker.notify(
                order, step, subject=subject, text=text, from_name="Loja", store=STORE_OF[order]
            )
            self.say(f"notify    {step.value:<20} From {message['From']}  To {message['To']}")
            self.clock.advance(timedelta(hours=8))

        self.say("\n== a carrier writes to the customer's alias, through the relay ==")
        outcome = self.relay_one(CARRIER, customer.address, self.carrier_mail(customer))
        contact = next(
            a for a in tracker.aliases(order, store=STORE_OF[order]) if a.role is Role.CONTACT
        )
        self.say(f"relay     {outcome.reply}: delivered to {outcome.deliver_to}")
        self.say(f"          the carrier got a reverse alias: {contact.address}")
        self.say(f"          envelope sender {outcome.mail_from}")

        self.say("\n== the customer replies to the carrier's alias ==")
        reply = _mail(
            f"Maria <{CUSTOMER}>",
            contact.address,
            "Re: Entrega agendada",
            "Obrigada! Estarei em casa.",
            "reply-1@example.com.br",
            passed="example.com.br",
        )
        outcome = self.relay_one(CUSTOMER, contact.address, reply)
        from_line = next(
            line
            for line in (outcome.message or b"").split(b"\r\n")
            if line.lower().startswith(b"from:")
        )
        self.say(f"relay     {outcome.reply}: delivered to {outcome.deliver_to}")
        self.say(f"          the carrier sees {from_line.decode()!r}, never the real address")

        step, subject, text = STEPS[4]
        tracker.notify(
            order, step, subject=subject, text=text, from_name="Loja", store=STORE_OF[order]
        )
        self.say(f"notify    {step.value}")

    def carrier_mail(self, customer: Alias) -> bytes:
        return _mail(
            f"Transportadora <{CARRIER}>",
            customer.address,
            "Entrega agendada",
            "Sua entrega chega amanhã.",
            "track-1@transportadora",
            passed="transportadora.example.net",
        )

    def forged_store(self, order: str) -> None:
        customer = self.customers[order]
        self.say("\n== a stranger writes as the store, without authentication ==")
        forged = _mail(
            "Loja <vendas@loja-complexa.example.com>",
            customer.address,
            "Seu pedido foi bloqueado: clique aqui",
            "Confirme seus dados em https://phishing.example/",
            "forged-1@evil.example",
        )
        outcome = self.relay_one("x@evil.example", customer.address, forged)
        from_line = next(
            line
            for line in (outcome.message or b"").split(b"\r\n")
            if line.lower().startswith(b"from:")
        )
        self.say(f"relay     {outcome.reply}: shown as {from_line.decode()!r}")
        self.say("          not as the store's alias, and no alias was issued to the stranger")

    def blocked_sender(self, order: str) -> None:
        tracker, customer, shop = self.tracker, self.customers[order], STORE_OF[order]
        self.say("\n== the customer blocks the carrier in this order (she clicked its message) ==")
        clicked = next(
            m
            for m in reversed(tracker.timeline(order, store=shop).messages)
            if m.data.get("from") and m.data["from"][0].get("role") == Role.CONTACT.value
        )
        tracker.block(order, clicked, store=shop, reason="the customer asked")
        again = _mail(
            f"Transportadora <{CARRIER}>",
            customer.address,
            "Ofertas da semana",
            "Frete grátis na próxima compra!",
            "offer-1@transportadora",
            passed="transportadora.example.net",
        )
        self.say(f"block     {CARRIER} in order {order} only")
        self.say(f"relay     {self.relay_one(CARRIER, customer.address, again).reply}")

    def moderated_and_answered(self, order: str) -> None:
        tracker, customer, shop = self.tracker, self.customers[order], STORE_OF[order]
        sender = f"vendas@{shop}.example.com"
        store_alias = next(
            a
            for a in tracker.aliases(order, store=shop)
            if a.role is Role.STORE and a.usable_at(self.clock.now())
        )
        self.say("\n== the customer asks the store and leaves her phone number (moderated) ==")
        question = _mail(
            f"Maria <{CUSTOMER}>",
            store_alias.address,
            "Dúvida sobre a entrega",
            "Podem me ligar? (11) 98765-4321",
            "ask-1@example.com.br",
            passed="example.com.br",
        )
        outcome = self.relay_one(CUSTOMER, store_alias.address, question)
        flags = (outcome.details or {}).get("moderation") or []
        self.say(f"relay     {outcome.reply}: delivered to the store, and flagged:")
        for flag in flags if isinstance(flags, list) else []:
            self.say(f"          {flag.get('moderator')}: {flag.get('reason')}")

        self.clock.advance(timedelta(hours=2))
        answer = _mail(
            f"Loja <{sender}>",
            customer.address,
            "Re: Dúvida sobre a entrega",
            "Ligaremos hoje à tarde.",
            "answer-1@loja-complexa.example.com",
            passed=f"{shop}.example.com",
        )
        self.say(
            f"relay     {self.relay_one(sender, customer.address, answer).reply}: "
            "the store answers two hours later"
        )
        metrics = tracker.timeline(order, store=shop).metrics()
        times = tracker.response_times(store=shop, since=self.started)
        self.say(
            f"metrics   time to the store's first reply: {metrics.time_to_first_reply}; "
            f"awaiting a reply: {'yes' if metrics.awaiting_reply else 'no'}"
        )
        self.say(
            f"          the store's median reply time: {times.median} "
            f"over {times.replies} answered turn(s)"
        )

    def simple_store(self, order: str) -> None:
        self.say(f"\n== the simple store's order {order}: readable aliases route the same ==")
        message = self.tracker.notify(
            order,
            OrderEvent.PAYMENT_APPROVED,
            subject="Pagamento aprovado",
            text="Seu pagamento foi aprovado.",
            from_name="Loja Simples",
            store=STORE_OF[order],
        )
        self.say(f"notify    payment-approved     From {message['From']}")
        customer = self.customers[order]
        outcome = self.relay_one(CARRIER, customer.address, self.carrier_mail(customer))
        self.say(f"relay     {outcome.reply}: delivered to {outcome.deliver_to}")
        self.say(f"          envelope sender {outcome.mail_from}")

    def refusals(self, order: str) -> None:
        customer = self.customers[order]
        address = customer.address
        forged = address[:10] + ("0" if address[10] != "0" else "1") + address[11:]
        self.say("\n== a forged alias ==")
        outcome = self.relay_one(CARRIER, forged, self.carrier_mail(customer))
        self.say(f"relay     {forged}\n          {outcome.reply}")

        self.clock.advance(timedelta(days=61))
        self.say("\n== 61 days later: a late e-mail to the expired alias ==")
        late = _mail(CARRIER, address, "Pesquisa de satisfação", "Como foi?", "late-1@x")
        self.say(f"relay     {self.relay_one(CARRIER, address, late).reply}")

    def show_timelines(self) -> None:
        if self.as_json:
            exported = [
                self.tracker.timeline(order, store=shop).to_dict() for shop, order in ORDERS.items()
            ]
            print(json.dumps(exported, indent=2, ensure_ascii=False), file=self.out)
            return
        for shop, order in ORDERS.items():
            self.say(f"\n== the timeline of order {order} ==")
            self.say(render_timeline(self.tracker.timeline(order, store=shop)))
