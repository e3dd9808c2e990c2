"""Write ``schema_v1.sqlite`` and ``schema_v1.json``: a database made with schema version 1.

Run once, from the repository root, with the release whose schema (version 1)
is pinned::

    python tests/vectors/make_schema_v1.py

Schema version 1 kept a conversation's timeline by conversation alone, so two
stores that number an order alike shared one. This script writes exactly that
case (stores ``shop-a`` and ``shop-b`` both have order ``1001``), with sealed
addresses (``ct1.`` values), a purged alias, a conversation without aliases,
and de-duplicated messages. ``schema_v1.json`` holds the same rows, for
loading into PostgreSQL and MariaDB with the version 1 DDL kept in
``tests/vectors/schema_v1.py``. The files are the authority, not this script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ct_alias import FrozenClock, Policy, Tracker
from ct_alias.storage.sql import SQLStorage

HERE = Path(__file__).parent
SIGNING_KEYS = ["by0yeAsfIGAnFfMsJLYpmx8SgqzZQNwmotbT5T8DGt8"]
INDEX_KEY = "v7cBpNtYut0F6aARkKgSc1xahdTZa0Thr0G4aBAom3Q"
ADDRESS_KEYS = ["3c4sEiLJt9Z_uCZcj8GM_RVzMwabgZsUwKbFbZQxDzo"]
DOMAIN = "ct.example.com"
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _message(sender: str, to: str, subject: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Thu, 01 Jan 2026 09:00:00 +0000\r\n\r\n"
        "Hello, where is my order?\r\n"
    ).encode()


def build(path: Path) -> dict[str, Any]:
    path.unlink(missing_ok=True)
    clock = FrozenClock(START)
    storage = SQLStorage(f"sqlite:///{path}")
    storage.upgrade()
    tracker = Tracker(
        storage=storage,
        keys=SIGNING_KEYS,
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
        address_keys=ADDRESS_KEYS,
    )
    tracker.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    aliases: dict[str, Any] = {}
    for store, buyer in (("shop-a", "ana@buyer-a.example"), ("shop-b", "bia@buyer-b.example")):
        customer = tracker.mask(buyer, conversation="1001", store=store)
        shop = tracker.mask(
            f"sales@{store}.example", conversation="1001", store=store, role="store"
        )
        aliases[store] = {"customer": customer.address, "store": shop.address, "real": buyer}
        clock.advance(timedelta(minutes=1))
        tracker.record_message(
            "1001",
            _message(buyer, shop.address, f"Order 1001 at {store}", f"m-{store}@buyer.example"),
            direction="inbound",
        )
        clock.advance(timedelta(minutes=1))
    tracker.record_event("1001", "payment-approved", data={"note": "both stores"})
    tracker.record_message(  # the same message twice: one entry
        "1001",
        _message(
            "ana@buyer-a.example", aliases["shop-a"]["store"], "again", "m-shop-a@buyer.example"
        ),
        direction="inbound",
    )
    other = tracker.mask("caio@buyer-c.example", conversation="2002", store="shop-a")
    tracker.record_event("2002", "invoiced")
    gone = tracker.mask(
        "duda@buyer-d.example", conversation="3003", store="shop-b", role="customer"
    )
    tracker.revoke(gone, reason="customer asked")
    clock.advance(timedelta(days=1))
    assert tracker.purge() == 1
    tracker.record_event("9999", "canceled")  # a conversation without aliases
    with storage.engine.connect() as conn:
        tables = storage.tables
        rows = {
            name: [
                {
                    k: (v.isoformat() if isinstance(v, datetime) else v)
                    for k, v in row._mapping.items()  # noqa: SLF001 - SQLAlchemy's public row mapping
                }
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in (
                ("aliases", tables.aliases),
                ("timeline", tables.timeline),
                ("schema_version", tables.versions),
            )
        }
    storage.close()
    return {
        "about": "A database written by ct_alias with schema version 1 (see make_schema_v1.py).",
        "signing_keys": SIGNING_KEYS,
        "index_key": INDEX_KEY,
        "address_keys": ADDRESS_KEYS,
        "domain": DOMAIN,
        "now": (START + timedelta(days=1, minutes=5)).isoformat(),
        "aliases": aliases,
        "other": other.address,
        "rows": rows,
    }


if __name__ == "__main__":
    data = build(HERE / "schema_v1.sqlite")
    (HERE / "schema_v1.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
