"""Conversations are per store: two stores with an order ``1001`` each never mix.

The marketplace case of issue #15: every shop platform numbers orders per
store, so two stores' ``1001`` are two conversations. Nothing of one reaches
the other: participants, timelines (with real addresses), notifications,
ending events, ``end``, ``reactivate``, duplicates. Run on every backend.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ct_alias import (
    DEFAULT_STORE,
    FrozenClock,
    MissingParticipant,
    OrderEvent,
    Policy,
    Role,
    Tracker,
)
from ct_alias.cli import main
from ct_alias.storage import MemoryStorage, Storage
from ct_alias.storage.sql import SQLStorage

from .conftest import DOMAIN, START
from .sql_servers import clear

SIGNING_KEY = "Xh8Jg1m6Qq2a9pVn0yLkT3sFz7cWbR4uE5iO6dH2jKM"
INDEX_KEY = "pR3bN7vX1cQ8zL5kM0wY2tH6gF9dS4aJ7eU1iO3nB5V"
STORES = ("shop-a", "shop-b")
BUYER = {"shop-a": "ana@buyer-a.example", "shop-b": "bia@buyer-b.example"}


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "sqlite":
        with SQLStorage(f"sqlite:///{tmp_path / 'ct.db'}") as opened:
            opened.upgrade()
            yield opened
    else:
        shared: SQLStorage = request.getfixturevalue(f"{request.param}_store")
        clear(shared)
        yield shared


@pytest.fixture
def tracker(storage: Storage) -> Tracker:
    tracker = Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(START),
        index_key=INDEX_KEY,
    )
    for store in STORES:
        tracker.set_policy(
            store,
            Policy(domain=DOMAIN, end_on={OrderEvent.DELIVERED}, grace=timedelta(days=1)),
        )
    for store in STORES:
        tracker.mask(BUYER[store], conversation="1001", store=store)
        tracker.mask(f"sales@{store}.example", conversation="1001", store=store, role=Role.STORE)
    return tracker


def test_participants_and_timelines_stay_in_their_store(tracker: Tracker) -> None:
    for store, other in (("shop-a", "shop-b"), ("shop-b", "shop-a")):
        aliases = tracker.aliases("1001", store=store)
        assert {a.store for a in aliases} == {store}
        assert {a.real_address for a in aliases} == {BUYER[store], f"sales@{store}.example"}
        exported = tracker.timeline("1001", store=store).to_json(include_real_addresses=True)
        assert BUYER[store] in exported
        assert BUYER[other] not in exported
        assert f"sales@{other}.example" not in exported
    assert tracker.aliases("1001") == []  # the default store has no order 1001
    assert tracker.timeline("1001", store=DEFAULT_STORE).entries == ()


def test_notify_goes_to_its_own_stores_customer(tracker: Tracker) -> None:
    for store in STORES:
        message = tracker.notify(
            "1001", OrderEvent.INVOICED, subject="Faturado", text="ok", store=store
        )
        assert message["To"] == BUYER[store]
        (shop,) = [a for a in tracker.aliases("1001", store=store) if a.role is Role.STORE]
        assert message["From"] == shop.address
    with pytest.raises(MissingParticipant):
        tracker.notify("1001", OrderEvent.INVOICED, subject="Faturado", text="ok")  # default store
    for store in STORES:
        timeline = tracker.timeline("1001", store=store)
        assert [m.data["subject"] for m in timeline.messages] == ["Faturado"]
        assert [e.name for e in timeline.events].count("invoiced") == 1


def test_an_ending_event_ends_only_its_stores_aliases(tracker: Tracker) -> None:
    tracker.record_event("1001", OrderEvent.DELIVERED, store="shop-a")
    now = tracker.clock.now()
    ended = {a.store for a in tracker.aliases("1001", store="shop-a") if a.ends_at is not None}
    assert ended == {"shop-a"}
    assert all(a.ends_at is None for a in tracker.aliases("1001", store="shop-b"))
    assert all(a.usable_at(now) for a in tracker.aliases("1001", store="shop-b"))
    assert "delivered" not in [e.name for e in tracker.timeline("1001", store="shop-b").events]
    assert [a.store for a in tracker.end("1001", store="shop-b")] == ["shop-b", "shop-b"]
    reopened = tracker.reactivate("1001", store="shop-a", for_=timedelta(hours=1))
    assert {a.store for a in reopened} == {"shop-a"}


def test_the_same_message_is_recorded_once_per_store(tracker: Tracker) -> None:
    raw = (
        b"From: carrier@carrier.example\r\nTo: someone@example.org\r\nSubject: Entrega\r\n"
        b"Message-ID: <same@carrier.example>\r\n\r\nhello\r\n"
    )
    a = tracker.record_message("1001", raw, direction="inbound", store="shop-a")
    b = tracker.record_message("1001", raw, direction="inbound", store="shop-b")
    assert a.seq != b.seq
    assert (a.store, b.store) == ("shop-a", "shop-b")
    assert tracker.record_message("1001", raw, direction="inbound", store="shop-b") == b
    for store in STORES:
        assert len(tracker.timeline("1001", store=store).messages) == 1


def test_cli_timeline_takes_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT_ALIAS_DB", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CT_ALIAS_KEYS", SIGNING_KEY)
    monkeypatch.setenv("CT_ALIAS_INDEX_KEY", INDEX_KEY)
    monkeypatch.setenv("CT_ALIAS_DOMAIN", DOMAIN)
    monkeypatch.delenv("CT_ALIAS_ADDRESS_KEYS", raising=False)

    def run(*argv: str) -> str:
        out = io.StringIO()
        assert main(list(argv), out=out) == 0
        return out.getvalue()

    run("db", "upgrade")
    for store in STORES:
        run("mask", BUYER[store], "-c", "1001", "--store", store)
    for store, other in (("shop-a", "shop-b"), ("shop-b", "shop-a")):
        exported = json.loads(
            run("timeline", "1001", "--store", store, "--json", "--include-real-addresses")
        )
        assert exported["store"] == store
        assert [p["realAddress"] for p in exported["participants"]] == [BUYER[store]]
        assert BUYER[other] not in json.dumps(exported)
    out = io.StringIO()
    assert main(["timeline", "1001", "--json"], out=out) == 1  # the default store has none
