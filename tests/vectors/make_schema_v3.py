"""Write ``schema_v3.sqlite`` and ``schema_v3.json``: a database made with schema version 3.

Run once, from the repository root, with the release whose schema (version 3)
is pinned::

    python tests/vectors/make_schema_v3.py

Schema version 3 had no owner column: nothing linked the aliases of one
person across stores and conversations. This script writes a person
(``Ana Prado <ana.prado@buyer-a.example>``) with aliases in two stores and
three conversations, messages that name her (her display name in a subject,
her address quoted in first words), an alias of hers already purged, and
another customer who must stay untouched — all with sealed addresses.
``schema_v3.json`` holds the same rows, for loading into PostgreSQL and
MariaDB with the version 3 DDL kept in ``tests/vectors/schema_v3.py``. The
files are the authority, not this script.
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
SIGNING_KEYS = ["PQ9pFngkxVIXFeHxONIZiaEeR8oFT31sT2JR1thkS2A"]
INDEX_KEY = "WJXpxzTy4ZyUAs8DAYCjh52mDEkheMrHTUDEqsQsUsQ"
ADDRESS_KEYS = ["5NQvW0gcJUQ3bzLngp4KwR_HiSIZYAzsGiaESXz_MrQ"]
DOMAIN = "ct.example.com"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PERSON = {"address": "ana.prado@buyer-a.example", "local": "ana.prado", "name": "Ana Prado"}
OTHER = {"address": "bia.lima@buyer-b.example", "local": "bia.lima", "name": "Bia Lima"}


def _message(sender: str, to: str, subject: str, message_id: str, text: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Sun, 01 Mar 2026 09:00:00 +0000\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def build(path: Path) -> dict[str, Any]:
    path.unlink(missing_ok=True)
    clock = FrozenClock(START)
    storage = SQLStorage(f"sqlite:///{path}")
    assert storage.upgrade() == 3
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
    ana = f"{PERSON['name']} <{PERSON['address']}>"
    for store, conversation in (("shop-a", "1001"), ("shop-b", "1001"), ("shop-b", "2002")):
        customer = tracker.mask(PERSON["address"], conversation=conversation, store=store)
        shop = tracker.mask(
            f"sales@{store}.example", conversation=conversation, store=store, role="store"
        )
        aliases[f"{store}/{conversation}"] = {"customer": customer.address, "store": shop.address}
        clock.advance(timedelta(minutes=1))
        tracker.record_message(
            conversation,
            _message(
                ana,
                shop.address,
                f"Pedido {conversation} - {PERSON['name']}",
                f"m-{store}-{conversation}@buyer-a.example",
                f"Ola, sou {PERSON['name']} ({PERSON['address']}), onde esta meu pedido?",
            ),
            direction="inbound",
            store=store,
        )
        tracker.record_event(conversation, "payment-approved", store=store)
    other = tracker.mask(OTHER["address"], conversation="3003", store="shop-a")
    other_shop = tracker.mask(
        "sales@shop-a.example", conversation="3003", store="shop-a", role="store"
    )
    tracker.record_message(
        "3003",
        _message(
            f"{OTHER['name']} <{OTHER['address']}>",
            other_shop.address,
            f"Pedido 3003 - {OTHER['name']}",
            "m-3003@buyer-b.example",
            "Ola, tudo bem?",
        ),
        direction="inbound",
        store="shop-a",
    )
    gone = tracker.mask(PERSON["address"], conversation="4004", store="shop-a")
    tracker.record_event("4004", "canceled", store="shop-a", data={"note": "asked by the buyer"})
    tracker.revoke(gone, reason="order canceled")
    clock.advance(timedelta(days=1))
    assert tracker.purge() == 1
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
                ("policies", tables.policies),
                ("schema_version", tables.versions),
            )
        }
    storage.close()
    return {
        "about": "A database written by ct_alias with schema version 3 (see make_schema_v3.py).",
        "signing_keys": SIGNING_KEYS,
        "index_key": INDEX_KEY,
        "address_keys": ADDRESS_KEYS,
        "domain": DOMAIN,
        "now": (START + timedelta(days=1, minutes=10)).isoformat(),
        "person": PERSON,
        "other": {**OTHER, "customer": other.address},
        "aliases": aliases,
        "purged": gone.address,
        "rows": rows,
    }


if __name__ == "__main__":
    data = build(HERE / "schema_v3.sqlite")
    (HERE / "schema_v3.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
