"""Schema migrations: a database written by schema version 1 upgrades, and nothing is lost.

Version 1 kept timelines by conversation alone: stores ``shop-a`` and
``shop-b`` of ``tests/vectors/schema_v1.json`` both have order ``1001`` and
shared its timeline. After ``upgrade()`` each store sees its own aliases,
messages and events, an entry naming no alias is kept by each store that saw
it, every sealed address still opens, and de-duplication is per store.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ct_alias import FrozenClock, Policy, Tracker
from ct_alias.storage.sql import SCHEMA_VERSION, SQLStorage

from .sql_servers import Target
from .vectors.schema_v1 import build_v1_tables

VECTORS = Path(__file__).parent / "vectors"
V1 = json.loads((VECTORS / "schema_v1.json").read_text(encoding="utf-8"))
_DATETIMES = {"created_at", "expires_at", "ends_at", "revoked_at", "purged_at", "expired_at", "at"}
_DATETIMES |= {"applied_at"}


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k in _DATETIMES and v is not None else v
        for k, v in row.items()
    }


def _tracker(storage: SQLStorage) -> Tracker:
    tracker = Tracker(
        storage=storage,
        keys=V1["signing_keys"],
        default_policy=Policy(domain=V1["domain"]),
        clock=FrozenClock(datetime.fromisoformat(V1["now"])),
        index_key=V1["index_key"],
        address_keys=V1["address_keys"],
    )
    tracker.set_policy("shop-b", Policy(domain=V1["domain"], strategy="simple"))
    return tracker


@pytest.fixture
def v1_file(tmp_path: Path) -> Iterator[SQLStorage]:
    """A copy of the SQLite file that schema version 1 wrote."""
    path = tmp_path / "v1.sqlite"
    shutil.copyfile(VECTORS / "schema_v1.sqlite", path)
    with SQLStorage(f"sqlite:///{path}") as storage:
        yield storage


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def v1_loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    """Schema version 1's tables, made with its DDL, holding ``schema_v1.json``'s rows."""
    if request.param == "sqlite":
        target = Target("sqlite", f"sqlite:///{tmp_path / 'v1.db'}")
    else:
        target = request.getfixturevalue(request.param)
    prefix = f"v1_{secrets.token_hex(3)}_"
    metadata, tables = build_v1_tables(prefix, target.options.get("schema"))
    storage = target.open(prefix=prefix)
    metadata.create_all(storage.engine)
    with storage.engine.begin() as conn:
        for name, table in tables.items():
            conn.execute(sa.insert(table), [_row(r) for r in V1["rows"][name]])
        if conn.dialect.name == "postgresql":  # explicit ids leave the sequences behind
            for table, column in ((tables["aliases"], "id"), (tables["timeline"], "seq")):
                name = storage.engine.dialect.identifier_preparer.format_table(table)
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                        f"(SELECT max({column}) FROM {name}))"
                    )
                )
    try:
        yield storage
    finally:
        storage.tables.metadata.drop_all(storage.engine)
        metadata.drop_all(storage.engine)  # what a failed upgrade may have left
        storage.close()


def _check_upgraded(storage: SQLStorage) -> None:
    assert storage.schema_version() == 1
    assert storage.upgrade() == SCHEMA_VERSION == 4
    assert storage.upgrade() == 4  # idempotent
    tracker = _tracker(storage)
    old_seqs = [r["seq"] for r in V1["rows"]["timeline"]]

    for store, other in (("shop-a", "shop-b"), ("shop-b", "shop-a")):
        mine = V1["aliases"][store]
        theirs = V1["aliases"][other]
        timeline = tracker.timeline("1001", store=store)
        assert {a.address for a in timeline.participants} == {mine["customer"], mine["store"]}
        assert {e.store for e in timeline.entries} == {store}
        (message,) = timeline.messages
        assert message.data["subject"] == f"Order 1001 at {store}"
        events = [e.name for e in timeline.events]
        assert events.count("alias-created") == 2
        assert events.count("payment-approved") == 1  # named no alias: each store keeps it
        exported = timeline.to_json(include_real_addresses=True)
        assert mine["real"] in exported
        assert theirs["real"] not in exported
        assert theirs["customer"] not in exported
        for address in (mine["customer"], mine["store"]):
            assert tracker.unmask(address).store == store  # sealed values still open
        assert tracker.unmask(mine["customer"]).real_address == mine["real"]

    assert [e.name for e in tracker.timeline("2002", store="shop-a").events] == [
        "alias-created",
        "invoiced",
    ]
    assert tracker.timeline("2002", store="shop-b").entries == ()
    purged = [e.name for e in tracker.timeline("3003", store="shop-b").events]
    assert purged == ["alias-created", "alias-revoked"]
    assert [e.name for e in tracker.timeline("9999").events] == ["canceled"]  # default store

    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(storage.tables.timeline)).all()
    assert len(rows) == len(old_seqs) + 1  # the shared event, copied once
    assert set(old_seqs) <= {r.seq for r in rows}  # positions (cursors) kept

    # the release's sealed values (format 1) are re-sealed in format 2 by a rotation
    live = [r for r in V1["rows"]["aliases"] if r["purged_at"] is None]
    rotated = tracker.rotate_address_keys()
    assert (rotated.resealed, rotated.corrupt) == (len(live), ())
    assert tracker.rotate_address_keys().resealed == 0
    for store in ("shop-a", "shop-b"):
        customer = tracker.unmask(V1["aliases"][store]["customer"])
        assert customer.real_address == V1["aliases"][store]["real"]

    # de-duplication is per store now, and new entries come after the old ones
    again = tracker.timeline("1001", store="shop-a").messages[0]
    raw = (
        b"From: ana@buyer-a.example\r\nTo: x@ct.example.com\r\nSubject: again\r\n"
        b"Message-ID: <m-shop-a@buyer.example>\r\n\r\nhi\r\n"
    )
    assert tracker.record_message("1001", raw, direction="inbound", store="shop-a") == again
    fresh = tracker.record_message("1001", raw, direction="inbound", store="shop-b")
    assert fresh.store == "shop-b"
    assert fresh.seq is not None
    assert fresh.seq > max(old_seqs)


def test_the_file_schema_version_1_wrote_upgrades(v1_file: SQLStorage) -> None:
    _check_upgraded(v1_file)


def test_schema_version_1_upgrades_on_every_database(v1_loaded: SQLStorage) -> None:
    _check_upgraded(v1_loaded)


def test_the_vectors_hold_the_case_version_1_mixed_up() -> None:
    """The fixture is what the migration is about: two stores in one conversation."""
    stores = {r["store"] for r in V1["rows"]["aliases"] if r["conversation"] == "1001"}
    assert stores == {"shop-a", "shop-b"}
    assert "store" not in V1["rows"]["timeline"][0]


def test_a_fresh_database_is_made_at_the_newest_version(tmp_path: Path) -> None:
    with SQLStorage(f"sqlite:///{tmp_path / 'new.db'}") as storage:
        assert storage.upgrade() == SCHEMA_VERSION
        columns = sa.inspect(storage.engine).get_columns(storage.tables.timeline.name)
        assert {c["name"]: c["nullable"] for c in columns}["store"] is False
