"""Timeline.to_html: an escaped, self-contained fragment, and what a browser shows of it.

Run this file as a script to refresh the screenshot in the docs::

    python -m tests.test_timeline_html docs/_static/timeline.png
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ct_alias import (
    Direction,
    FrozenClock,
    MemoryStorage,
    OrderEvent,
    Policy,
    Relay,
    Role,
    Timeline,
    Tracker,
)
from ct_alias.auth import AuthenticationResults

# Made with `ct-alias keys generate --count 2`.
SIGNING_KEY = "c5xnDxBSDGKZw9miPvYF9m2MXafJk7cITzUFaPyL2ZE"
INDEX_KEY = "qpnj0tmkchwfyj35e8tmMQQ7Gjk4l-RjQMca5HkPmvY"
DOMAIN = "ct.example.com"
MTA = "mx.ct.example.com"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORDER = "1077540530277-01"
CUSTOMER = "maria.silva@example.com.br"
SHOP = "vendas@loja.example.com"
CARRIER = "rastreio@transportadora.example.net"
HOSTILE_SUBJECT = "<script>alert('subject')</script> & \"quoted\" <img src=x onerror=alert(1)>"
HOSTILE_NAME = "</span><svg onload=alert(2)> Loja & Cia"
HOSTILE_EVENT = "<b>gift-wrap</b>"


def _mail(sender: str, to: str, subject: str, message_id: str, *, passed: str | None) -> bytes:
    verdict = (
        f"Authentication-Results: {MTA}; dmarc=pass header.from={passed}\r\n" if passed else ""
    )
    return (
        f"{verdict}From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
        "\r\nSua entrega chega amanhã.\r\n"
    ).encode()


def order_timeline() -> tuple[Tracker, Timeline]:
    """An order with every kind of entry the page marks, and hostile text in it."""
    clock = FrozenClock(START)
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
    )
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    tracker.mask(SHOP, conversation=ORDER, role=Role.STORE)
    tracker.notify(
        ORDER, OrderEvent.PAYMENT_APPROVED, subject="Pagamento aprovado", text="Aprovado."
    )
    clock.advance(timedelta(hours=2))
    carrier = _mail(
        f"Transportadora <{CARRIER}>",
        customer.address,
        "Entrega agendada",
        "track-1@transportadora",
        passed="transportadora.example.net",
    )
    (accepted,) = relay.handle(CARRIER, [customer.address], carrier).outcomes
    relay.delivered(accepted)
    clock.advance(timedelta(minutes=5))
    forged = _mail(
        f'"{HOSTILE_NAME}" <{SHOP}>',
        customer.address,
        HOSTILE_SUBJECT,
        "forged-1@evil.example",
        passed=None,
    )
    (unverified,) = relay.handle("x@evil.example", [customer.address], forged).outcomes
    relay.delivered(unverified)
    relay.delivery_failed(unverified, 550, "5.1.1", permanent=True)
    tracker.record_event(ORDER, HOSTILE_EVENT, data={"<k>": "</li><script>x()</script>"})
    tracker.unmask(customer.address, reason="support ticket #42 <urgent>")
    mislabeled = customer.address.replace("@", "x@")
    relay.handle(CARRIER, [mislabeled], carrier)  # not ours: refused, not on the timeline
    tracker.revoke(customer, reason="leaked")
    late = _mail(CARRIER, customer.address, "Pesquisa", "late-1@x", passed=None)
    relay.handle(CARRIER, [customer.address], late)  # refused: revoked
    tracker.record_message(
        ORDER,
        _mail(CUSTOMER, SHOP, "Obrigada", "thanks-1@example.com.br", passed=None),
        direction=Direction.INBOUND,
    )
    return tracker, tracker.timeline(ORDER)


class _Page(HTMLParser):
    """Collects tags, attributes and text of a fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(fragment: str) -> _Page:
    page = _Page()
    page.feed(fragment)
    page.close()
    return page


def test_hostile_text_is_escaped_and_shown_as_text() -> None:
    _, timeline = order_timeline()
    fragment = timeline.to_html()
    page = _parse(fragment)
    assert set(page.tags) <= {
        "section", "style", "h2", "h3", "code", "table", "thead", "tbody", "tr", "th", "td",
        "span", "ol", "li", "div", "time", "p", "dl", "dt", "dd", "em",
    }  # fmt: skip
    assert "script" not in page.tags
    assert "svg" not in page.tags
    assert "img" not in page.tags
    names = {name for name, _ in page.attributes}
    assert names <= {"class", "data-conversation", "scope", "colspan", "id", "datetime", "title"}
    text = "".join(page.text)
    assert HOSTILE_SUBJECT in text
    assert HOSTILE_NAME in text
    assert HOSTILE_EVENT in text
    assert "</li><script>x()</script>" in text
    assert "support ticket #42 <urgent>" in text


def test_no_external_asset_and_the_stylesheet_is_optional() -> None:
    _, timeline = order_timeline()
    with_style = timeline.to_html()
    without = timeline.to_html(stylesheet=False)
    assert "<style>" in with_style
    assert "<style>" not in without
    for fragment in (with_style, without):
        assert "url(" not in fragment
        assert "@import" not in fragment
        assert "http://" not in fragment
        assert "https://" not in fragment
        assert fragment.startswith('<section class="ct-timeline"')
        assert fragment.rstrip().endswith("</section>")


def test_real_addresses_only_when_asked() -> None:
    tracker, timeline = order_timeline()
    hidden = timeline.to_html()
    for real in (CUSTOMER, SHOP):
        assert real not in hidden.lower()
    shown = timeline.to_html(include_real_addresses=True)
    assert SHOP in shown
    assert "Real address" in shown
    assert "Real address" not in hidden
    for alias in tracker.aliases(ORDER):
        assert alias.address in hidden


def test_entries_in_time_order_with_their_marks() -> None:
    _, timeline = order_timeline()
    fragment = timeline.to_html()
    ids = [int(part.split('"')[0]) for part in fragment.split('id="ct-entry-')[1:]]
    assert ids == [entry.seq for entry in timeline.entries]
    assert len(ids) == len(timeline.entries)
    for marked in (
        'class="ct-entry ct-event ct-rejected"',
        'class="ct-entry ct-event ct-failed"',
        'class="ct-entry ct-event ct-audit"',
        'class="ct-entry ct-event ct-order"',
        'class="ct-entry ct-message ct-outbound ct-unverified"',
        'class="ct-entry ct-message ct-inbound"',
    ):
        assert marked in fragment, marked
    text = "".join(_parse(fragment).text)
    for words in (
        "delivery rejected",
        "delivery failed",
        "unmask audit",
        "unverified sender",
        "dmarc pass (transportadora.example.net)",
        "not authenticated",
        "outbound message",
        "inbound message",
        "revoked",
        "payment-approved",
    ):
        assert words in text, words


def test_an_empty_conversation_and_a_page_with_more() -> None:
    tracker, _ = order_timeline()
    empty = tracker.timeline("no-such-order").to_html()
    assert "Nothing recorded yet." in empty
    assert "No participants." in empty
    page = tracker.timeline(ORDER, limit=2)
    assert page.next_after is not None
    assert f"<code>{page.next_after}</code>" in page.to_html()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    binary = _chromium()
    assert binary is not None
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def render_page(path: Path) -> Path:
    """Write the order page and its screenshot next to it; return the screenshot's path."""
    _, timeline = order_timeline()
    path.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Order</title>'
        f"</head><body>{timeline.to_html()}</body></html>",
        encoding="utf-8",
    )
    screenshot = path.with_suffix(".png")
    _browser("--window-size=1000,1500", f"--screenshot={screenshot}", path.as_uri())
    return screenshot


@pytest.mark.skipif(
    _chromium() is None and not (os.environ.get("CI") or os.environ.get("CT_ALIAS_CI")),
    reason="headless Chromium is not installed (apt-get install chromium); CI always has it",
)
def test_chromium_renders_the_page(tmp_path: Path) -> None:
    screenshot = render_page(tmp_path / "order.html")
    image = screenshot.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1000, 1500)
    dom = _browser("--dump-dom", (tmp_path / "order.html").as_uri()).stdout
    page = _parse(dom.split("<body>", 1)[1])
    assert "script" not in page.tags
    text = " ".join(" ".join(page.text).split())
    for words in (
        f"Conversation {ORDER}",
        "unverified sender",
        "delivery rejected",
        "delivery failed",
        "unmask audit",
        " ".join(HOSTILE_SUBJECT.split()),
    ):
        assert words in text, words
    assert CUSTOMER not in text


if __name__ == "__main__":  # pragma: no cover - refreshes the docs' screenshot
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_static/timeline.png").resolve()
    shot = render_page(target.with_suffix(".html"))
    target.with_suffix(".html").unlink()
    shot.replace(target)
    print(target)


def test_attachments_copies_defects_nested_data_and_purged_participants() -> None:
    clock = FrozenClock(START)
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
    )
    customer = tracker.mask(CUSTOMER, conversation=ORDER)
    shop = tracker.mask(SHOP, conversation=ORDER, role=Role.STORE)
    invoice = (
        f"From: Loja <{shop.address}>\r\nTo: {customer.address}\r\n"
        "Cc: Irmão <irmao@example.org>\r\nSubject: Nota fiscal\r\n"
        "Message-ID: <nf-1@loja.example.com>\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSegue a nota.\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="<nota>.pdf"\r\n\r\nJVBERi0=\r\n--b--\r\n'
    ).encode()
    tracker.record_message(ORDER, invoice, direction=Direction.OUTBOUND)
    tracker.record_message(ORDER, b"no header at all", direction=Direction.INBOUND)
    tracker.record_event(ORDER, "gift-wrap", data={"items": [1, "two"], "note": {"by": None}})
    shown = tracker.timeline(ORDER).to_html(include_real_addresses=True)
    assert f"{customer.address} = {CUSTOMER}" in shown
    clock.advance(timedelta(days=61))
    assert tracker.purge() == 2
    text = "".join(_parse(tracker.timeline(ORDER).to_html()).text)
    assert "attachments: <nota>.pdf" in text
    assert "Irmão irmao@example.org" in text
    assert "defects: no header fields" in text
    assert "(no subject)" in text
    assert "1, two" in text
    assert "by: -" in text
    assert "(purged)" in text
    assert "No participants." in text
    assert customer.address not in text
