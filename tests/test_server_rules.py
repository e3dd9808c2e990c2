"""Conversation rules through `ct-alias serve`: what a sending MTA is answered, what is recorded.

The store's policy is set with `ct-alias policy set` (as an operator does),
the host's actions (state, block, opt-out) are made by another process's
tracker on the same database (as a web application does), and the real
`serve` process enforces them between an MTA-like client and an aiosmtpd sink.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import smtplib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ct_alias import Alias, OrderEvent, Policy, Role, Tracker, storage_from_url

from .smtp_support import Serve, Sink, cli, free_port

# generated with secrets.token_urlsafe(32) for these tests
KEY = "vT4kq9Xn2Lr7Pz0Wm5Hc8Jd3Fb6Ns1Gy4Ue7Ri0Ao2Q"
INDEX_KEY = "Hq3Zt8Mv1Kc6Wx9Ld4Rb7Ny2Pj5Fs0Ge3Ua6Ti9Oo1E"
DOMAIN = "ct.example.com"
MTA = "mx.relay.test"
STORE_NAME = "loja"
CUSTOMER = "maria@example.com.br"
STORE = "vendas@loja.example.com"
SUPPORT = "ajuda@loja.example.com"
CARRIER = "rastreio@transportadora.example.net"
_IDS = itertools.count()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "CT_ALIAS_DB": f"sqlite:///{tmp_path / 'relay.db'}",
        "CT_ALIAS_KEYS": KEY,
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_INDEX_KEY": INDEX_KEY,
    }
    cli(environment, "db", "upgrade")
    return environment


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def serving() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.kill()


@contextlib.contextmanager
def host(env: dict[str, str]) -> Iterator[Tracker]:
    """The web application's tracker: same database and keys, another process's view."""
    storage = storage_from_url(env["CT_ALIAS_DB"])
    try:
        yield Tracker(
            storage=storage, keys=[KEY], default_policy=Policy(domain=DOMAIN), index_key=INDEX_KEY
        )
    finally:
        storage.close()  # type: ignore[attr-defined]


def start(env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve], *flags: str) -> Serve:
    """Set the store's policy with the CLI, then start `serve` trusting the MTA's verdicts."""
    cli(env, "policy", "set", STORE_NAME, *flags)
    server = Serve(env, sink[1], "--authserv-id", MTA)
    serving.append(server)
    return server


def participants(env: dict[str, str], order: str) -> dict[str, Alias]:
    with host(env) as tracker:
        return {
            "customer": tracker.mask(CUSTOMER, conversation=order, store=STORE_NAME),
            "support": tracker.mask(SUPPORT, conversation=order, store=STORE_NAME, role=Role.STORE),
            "store": tracker.mask(STORE, conversation=order, store=STORE_NAME, role=Role.STORE),
        }


def send(port: int, sender: str, to: str, *extra: str) -> tuple[int, str]:
    """One message, one recipient, as an MTA sends it; the final reply (RCPT or DATA)."""
    domain = sender.rpartition("@")[2]
    data = (
        "\r\n".join(
            [
                f"Authentication-Results: {MTA}; dmarc=pass header.from={domain}",
                f"From: {sender}",
                f"To: {to}",
                "Subject: about the order",
                f"Message-ID: <s{next(_IDS)}.{os.getpid()}@{domain}>",
                *extra,
            ]
        )
        + "\r\n\r\nHello.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mta.test")
        client.mail(sender)
        code, text = client.rcpt(to)
        if code != 250:
            return code, text.decode()
        code, text = client.data(data)
        return code, text.decode()


def rejected(env: dict[str, str], order: str) -> list[dict[str, Any]]:
    timeline = json.loads(cli(env, "timeline", order, "--store", STORE_NAME, "--json"))
    return [e["data"] for e in timeline["events"] if e["event"] == "delivery-rejected"]


def html(env: dict[str, str], order: str) -> str:
    with host(env) as tracker:
        return tracker.timeline(order, store=STORE_NAME).to_html()


def test_states_through_serve(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, _ = sink
    server = start(env, sink, serving, "--conversation-rules", "on", "--support-address", SUPPORT)
    p = participants(env, "o1")
    assert send(server.port, CUSTOMER, p["store"].address)[0] == 250
    with host(env) as tracker:
        tracker.set_state("o1", "on_hold", store=STORE_NAME, reason="mediation")
    code, text = send(server.port, CUSTOMER, p["store"].address)
    assert (code, text[:5]) == (550, "5.7.1")
    assert "on hold" in text
    assert send(server.port, CUSTOMER, p["support"].address)[0] == 250
    assert send(server.port, SUPPORT, p["customer"].address)[0] == 250
    with host(env) as tracker:
        tracker.set_state("o1", "closed", store=STORE_NAME)
    code, text = send(server.port, SUPPORT, p["customer"].address)
    assert code == 550
    assert "closed" in text
    assert downstream.copies(STORE) == 1
    assert downstream.copies(SUPPORT) == 1
    assert downstream.copies(CUSTOMER) == 1
    assert [r["rule"] for r in rejected(env, "o1")] == ["on_hold", "closed"]
    page = html(env, "o1")
    assert "conversation state" in page
    assert "this conversation is closed" in page


def test_a_blocked_sender_through_serve(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, _ = sink
    server = start(env, sink, serving, "--conversation-rules", "on")
    p = participants(env, "o2")
    other = participants(env, "o3")
    assert send(server.port, CARRIER, p["customer"].address)[0] == 250
    with host(env) as tracker:
        clicked = tracker.timeline("o2", store=STORE_NAME).messages[-1]
        tracker.block("o2", clicked, store=STORE_NAME)
    code, text = send(server.port, CARRIER, p["customer"].address)
    assert (code, text) == (550, "5.7.1 this sender was blocked in this conversation")
    assert send(server.port, CARRIER, other["customer"].address)[0] == 250  # another order
    with host(env) as tracker:
        tracker.unblock("o2", clicked, store=STORE_NAME)
    assert send(server.port, CARRIER, p["customer"].address)[0] == 250
    assert downstream.copies(CUSTOMER) == 3
    assert [r["rule"] for r in rejected(env, "o2")] == ["blocked"]
    assert "sender blocked" in html(env, "o2")


def test_a_window_through_serve(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    server = start(env, sink, serving, "--to-customer-window", "delivered:1h")
    p = participants(env, "o4")
    with host(env) as tracker:
        delivered = tracker.clock.now() - timedelta(hours=2)
        tracker.record_event("o4", OrderEvent.DELIVERED, store=STORE_NAME, at=delivered)
    code, text = send(server.port, STORE, p["customer"].address)
    assert code == 550
    assert "only within 1 hour after delivered" in text
    assert send(server.port, CUSTOMER, p["store"].address)[0] == 250  # she may always write
    with host(env) as tracker:
        (asked,) = tracker.timeline("o4", store=STORE_NAME).messages
        seen_by_store = tracker.index.message_key("o4", asked.data["messageId"])
    reply = send(
        server.port, STORE, p["customer"].address, f"In-Reply-To: <{seen_by_store}@{DOMAIN}>"
    )
    assert reply[0] == 250
    (refusal,) = rejected(env, "o4")
    assert refusal["rule"] == "window"
    assert refusal["reason"] == text.removeprefix("5.7.1 ")


def test_a_rate_cap_through_serve(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, _ = sink
    server = start(env, sink, serving, "--from-customer-per-hour", "2")
    p = participants(env, "o5")
    assert send(server.port, CUSTOMER, p["store"].address)[0] == 250
    assert send(server.port, CUSTOMER, p["store"].address)[0] == 250
    for _ in range(3):
        code, text = send(server.port, CUSTOMER, p["store"].address)
        assert (code, text[:5]) == (450, "4.7.1")
        assert "at most 2 an hour" in text
    assert send(server.port, STORE, p["customer"].address)[0] == 250  # the other direction
    assert downstream.copies(STORE) == 2
    (refusal,) = rejected(env, "o5")  # once per window
    assert (refusal["rule"], refusal["code"]) == ("rate", 450)


def test_opting_out_by_mail_through_serve(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, _ = sink
    server = start(env, sink, serving, "--unsubscribe-url", "https://loja.example.com/u/{token}")
    participants(env, "o6")
    with host(env) as tracker:
        review = tracker.notify(
            "o6",
            "review-request",
            subject="Como foi?",
            text="...",
            store=STORE_NAME,
            critical=False,
        )
    assert review is not None
    assert review["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto = review["List-Unsubscribe"].split(", ")[1].strip("<>")
    address = mailto.removeprefix("mailto:").split("?")[0]
    code, text = send(server.port, CUSTOMER, address)
    assert code == 250
    assert "unsubscribed" in text
    assert downstream.received == []  # consumed, nothing relayed
    forged = address[:5] + ("x" if address[5] != "x" else "y") + address[6:]
    assert send(server.port, CUSTOMER, forged)[0] == 550
    with host(env) as tracker:
        assert tracker.opted_out("o6", store=STORE_NAME)
        again = tracker.notify(
            "o6",
            "review-request",
            subject="Como foi?",
            text="...",
            store=STORE_NAME,
            critical=False,
        )
        assert again is None
    page = html(env, "o6")
    assert "opted out of non-critical messages" in page
    assert "notification suppressed" in page
