"""Erasure: ``Tracker.forget`` and ``ct-alias forget`` leave no trace of a person.

A person (``Ana Prado <ana.prado@buyer-a.example>``) has aliases in two
stores and three conversations, writes and is written to, is quoted and
named in texts. After ``forget`` a scan of every table's every column (or of
the memory storage's every record) finds neither her address, nor its local
part, nor her display name; nor does any timeline read through the tracker.
Another customer's conversation is untouched, and the order history keeps its
shape. On memory, SQLite, PostgreSQL and MariaDB, with and without address
keys.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import smtplib
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from ct_alias import FrozenClock, InvalidAddress, MemoryStorage, Policy, Relay, Tracker
from ct_alias.cli import main
from ct_alias.errors import ExpiryReason, StorageError, UnsupportedStorage
from ct_alias.moderation import MessageView, Verdict
from ct_alias.storage import Erasure, ErasureStorage, Storage, Tombstone
from ct_alias.storage.sql import SCHEMA_VERSION, SQLStorage
from ct_alias.testing import T0, make_tracker
from ct_alias.timeline import AliasEvent, TimelineEntry
from ct_alias.tracker import ErasureReceipt

from .smtp_support import Serve, Sink, cli, free_port
from .sql_servers import Target
from .vectors.schema_v3 import build_v3_tables

ANA = "ana.prado@buyer-a.example"
ANA_LOCAL = "ana.prado"
ANA_NAME = "Ana Prado"
BIA = "bia.lima@buyer-b.example"
BIA_NAME = "Bia Lima"
DOMAIN = "ct.example.com"
CARRIER = "rastreio@transportadora.example.net"
TRACES = (ANA, ANA_LOCAL, ANA_NAME)


def _message(
    sender: str, to: str, subject: str, text: str, *, cc: str = "", mid: str, file: str = ANA_LOCAL
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\n"
        + (f"Cc: {cc}\r\n" if cc else "")
        + f"Subject: {subject}\r\nMessage-ID: <{mid}>\r\n"
        "Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        f'filename="{file}-nota.pdf"\r\n\r\nJVBERi0=\r\n--b--\r\n'
    ).encode()


# -- storages -----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    if request.param == "sqlite":
        target = Target("sqlite", f"sqlite:///{tmp_path / 'ct.db'}")
        with target.open() as sqlite:
            sqlite.upgrade()
            yield sqlite
        return
    target = request.getfixturevalue(request.param)
    assert isinstance(target, Target)
    prefix = f"e{secrets.token_hex(3)}_"
    with target.open(prefix=prefix) as sql:
        sql.upgrade()
        try:
            yield sql
        finally:
            sql.tables.metadata.drop_all(sql.engine)


@pytest.fixture(params=[False, True], ids=["cleartext", "sealed"])
def sealed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _tracker(storage: Storage, clock: FrozenClock, *, sealed: bool, **more: Any) -> Tracker:
    options: dict[str, Any] = {"address_keys": [secrets.token_urlsafe(32)]} if sealed else {}
    options.update(more)
    tracker = make_tracker(storage, clock=clock, domain=DOMAIN, **options)
    tracker.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    return tracker


def dump(storage: Storage) -> str:
    """Every stored value as text: every table's every column, or every memory record."""
    texts: list[str] = []
    if isinstance(storage, SQLStorage):
        tables = storage.tables
        with storage.engine.connect() as conn:
            for table in (tables.aliases, tables.timeline, tables.policies, tables.versions):
                columns = [sa.cast(c, sa.Text) for c in table.columns]
                for row in conn.execute(sa.select(*columns)):
                    texts += [str(v) for v in row]
        return "\n".join(texts)
    assert isinstance(storage, MemoryStorage)

    def walk(value: object) -> None:
        if attrs.has(type(value)):
            walk(attrs.asdict(value))  # type: ignore[arg-type]
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item)
        else:
            texts.append(str(value))

    walk({k: v for k, v in vars(storage).items() if k not in {"_lock", "_seq"}})
    return "\n".join(texts)


def _traces(text: str) -> list[str]:
    folded = text.lower()
    return [t for t in TRACES if t.lower() in folded]


# -- the scenario ---------------------------------------------------------------------


@attrs.frozen
class Scene:
    tracker: Tracker
    clock: FrozenClock
    ana: dict[str, str]
    places: tuple[tuple[str, str], ...]


def _play(tracker: Tracker, clock: FrozenClock) -> Scene:
    """Ana in shop-a/1001, shop-b/1001 (simple) and shop-b/2002; Bia in shop-a/3003."""
    ana: dict[str, str] = {}
    places = (("shop-a", "1001"), ("shop-b", "1001"), ("shop-b", "2002"))
    for store, order in places:
        customer = tracker.mask(ANA, conversation=order, store=store)
        shop = tracker.mask(f"sales@{store}.example", conversation=order, store=store, role="store")
        ana[f"{store}/{order}"] = customer.address
        clock.advance(timedelta(minutes=1))
        tracker.record_message(
            order,
            _message(
                f"{ANA_NAME} <{ANA}>",
                shop.address,
                f"Pedido {order} - {ANA_NAME}",
                f"Ola, sou {ANA_NAME} ({ANA}). Onde esta meu pedido?",
                mid=f"m-{store}-{order}@buyer-a.example",
            ),
            direction="inbound",
            store=store,
        )
        tracker.record_event(order, "payment-approved", store=store, data={"by": "gateway"})
        tracker.notify(
            order, "invoiced", subject=f"Nota fiscal para {ANA_NAME}", text="ok", store=store
        )
        clock.advance(timedelta(minutes=1))
    contact = tracker.mask(CARRIER, conversation="1001", store="shop-a", role="contact")
    tracker.record_message(  # the carrier writes about her, copying her outside any alias
        "1001",
        _message(
            f"Transportadora <{CARRIER}>",
            ana["shop-a/1001"],
            "Entrega agendada",
            f"Prezada {ANA_NAME}, sua entrega chega amanha.",
            cc=f'"{ANA_NAME}" <{ANA}>',
            mid="carrier-1@transportadora.example.net",
        ),
        direction="outbound",
        store="shop-a",
    )
    tracker.record_event("1001", "note", store="shop-a", data={"text": f"cliente {ANA}"})
    tracker.unmask(ana["shop-a/1001"], reason=f"suporte: {ANA_NAME} ligou")
    assert contact.role.value == "contact"
    tracker.mask(BIA, conversation="3003", store="shop-a")
    tracker.mask("sales@shop-a.example", conversation="3003", store="shop-a", role="store")
    tracker.record_message(
        "3003",
        _message(
            f"{BIA_NAME} <{BIA}>",
            "x@shop-a.example",
            f"Pedido 3003 - {BIA_NAME}",
            "Oi",
            mid="m-3003@buyer-b.example",
            file="bia",
        ),
        direction="inbound",
        store="shop-a",
    )
    clock.advance(timedelta(minutes=1))
    return Scene(tracker, clock, ana, places)


def _read_all(tracker: Tracker, places: Any) -> str:
    """Every timeline as its reader sees it: JSON with real addresses, and HTML."""
    texts = []
    for store, order in places:
        timeline = tracker.timeline(order, store=store)
        texts.append(timeline.to_json(include_real_addresses=True))
        texts.append(timeline.to_html(include_real_addresses=True))
        texts.append(repr([dict(e.data) for e in timeline.entries]))
    return "\n".join(texts)


def _shape(entries: tuple[TimelineEntry, ...]) -> list[tuple[str, str, datetime, int | None]]:
    return [(e.kind.value, e.name, e.at, e.seq) for e in entries]


# -- forget --------------------------------------------------------------------------


def test_forget_leaves_no_trace(storage: Storage, sealed: bool) -> None:
    clock = FrozenClock(T0)
    scene = _play(_tracker(storage, clock, sealed=sealed), clock)
    tracker = scene.tracker
    everywhere = (*scene.places, ("shop-a", "3003"))
    before = {p: tracker.timeline(p[1], store=p[0]) for p in everywhere}
    # The test can fail: before, her traces are there to be read (and stored in clear without keys).
    assert _traces(_read_all(tracker, scene.places)) == list(TRACES)
    if not sealed:
        assert _traces(dump(storage)) == list(TRACES)

    receipt = tracker.forget(ANA.upper())

    assert (receipt.aliases, receipt.stores, receipt.conversations) == (3, 2, 3)
    assert receipt.entries == 9  # 3 of hers, 3 notifications, the carrier's, a note, an audit
    assert receipt.unreadable == 0
    assert _traces(dump(storage)) == []
    assert _traces(_read_all(tracker, everywhere)) == []
    assert ANA not in repr(receipt)
    assert ANA_NAME not in repr(receipt)
    # Bia's conversation is untouched; Ana's orders keep their history, plus one `forgotten`.
    assert tracker.timeline("3003", store="shop-a") == before[("shop-a", "3003")]
    for store, order in scene.places:
        after = tracker.timeline(order, store=store)
        old = before[(store, order)]
        assert _shape(after.entries)[:-1] == _shape(old.entries)
        forgotten = after.entries[-1]
        assert forgotten.name == AliasEvent.FORGOTTEN.value
        assert set(forgotten.data) == {"aliases", "entries"}
        assert {a.role.value for a in after.participants} == {"store"} | (
            {"contact"} if (store, order) == ("shop-a", "1001") else set()
        )
    # Her aliases are tombstones; the slot is free for a new order's mask.
    for address in scene.ana.values():
        record = tracker.lookup(address)
        assert isinstance(record, Tombstone)
        assert record.owner is None
    # Idempotent: forgetting again finds nothing.
    again = tracker.forget(ANA)
    assert (again.aliases, again.entries, again.stores, again.conversations) == (0, 0, 0, 0)


def test_forget_finds_purged_aliases_and_what_their_conversations_say(storage: Storage) -> None:
    """A purge keeps the owner key: a later erasure still redacts the purged alias's order."""
    clock = FrozenClock(T0)
    tracker = _tracker(storage, clock, sealed=False)
    alias = tracker.mask(ANA, conversation="4004", store="shop-a")
    tracker.record_event("4004", "note", store="shop-a", data={"who": ANA_NAME + " <" + ANA + ">"})
    tracker.revoke(alias, reason="pedido cancelado")
    clock.advance(timedelta(days=1))
    assert tracker.purge() == 1
    assert _traces(dump(storage)) != []
    receipt = tracker.forget(ANA)
    assert (receipt.aliases, receipt.conversations, receipt.entries) == (1, 1, 2)  # note, reason
    assert _traces(dump(storage)) == []
    assert tracker.forget(ANA).aliases == 0


def test_a_forgotten_alias_is_refused_550_5_2_1_by_the_relay(storage: Storage) -> None:
    clock = FrozenClock(T0)
    tracker = _tracker(storage, clock, sealed=True)
    alias = tracker.mask(ANA, conversation="1001", store="shop-a")
    relay = Relay(tracker)
    mail = f"From: <{CARRIER}>\r\nTo: {alias.address}\r\nSubject: x\r\n\r\nHi\r\n".encode()
    (accepted,) = relay.handle(CARRIER, [alias.address], mail).outcomes
    assert accepted.code == 250
    tracker.forget(ANA)
    (refused,) = relay.handle(CARRIER, [alias.address], mail).outcomes
    assert (refused.code, refused.status) == (550, "5.2.1")
    assert ANA not in refused.reply


def test_forget_refuses_a_bad_address_and_a_storage_without_erasure() -> None:
    tracker = make_tracker()
    with pytest.raises(InvalidAddress) as info:
        tracker.forget("not an address")
    assert "not an address" not in str(info.value)

    class OnlyStorage:  # the base protocol, no ErasureStorage
        def __init__(self) -> None:
            self._inner = MemoryStorage()

        def __getattr__(self, name: str) -> Any:
            if name in {"owned", "unowned", "set_owners", "erase"}:
                raise AttributeError(name)
            return getattr(self._inner, name)

    only: Any = OnlyStorage()
    assert not isinstance(only, ErasureStorage)
    bare = make_tracker(only)
    with pytest.raises(UnsupportedStorage) as refused:
        bare.forget(ANA)
    assert (refused.value.operation, refused.value.protocol) == ("forget", "ErasureStorage")
    assert "ErasureStorage" in str(refused.value)


def test_forget_logs_no_address(caplog: pytest.LogCaptureFixture) -> None:
    clock = FrozenClock(T0)
    scene = _play(_tracker(MemoryStorage(), clock, sealed=True), clock)
    with caplog.at_level(logging.DEBUG, logger="ct_alias"):
        receipt = scene.tracker.forget(ANA)
    assert receipt.aliases == 3
    assert "forgot a person" in caplog.text
    assert _traces(caplog.text) == []


def test_an_erasure_is_all_or_nothing(storage: Storage) -> None:
    """An erasure whose last part cannot be written leaves the person as they were."""
    clock = FrozenClock(T0)
    tracker = _tracker(storage, clock, sealed=False)
    alias = tracker.mask(ANA, conversation="1001", store="shop-a")
    (entry,) = storage.entries("1001", store="shop-a")
    assert isinstance(storage, ErasureStorage)
    (record,) = storage.owned(tracker.index.owner_key(ANA))
    tomb = Tombstone(
        key=alias.key,
        conversation="1001",
        store="shop-a",
        role=alias.role,
        expired_at=T0,
        reason=ExpiryReason.REVOKED,
        purged_at=T0,
    )
    broken = attrs.evolve(entry, data={"bad": object()})  # cannot be stored
    with pytest.raises((StorageError, TypeError)):
        storage.erase(Erasure(tombstones=(tomb,), redactions=(broken,)))
    assert storage.get(alias.key) == record
    assert storage.entries("1001", store="shop-a") == [entry]


def test_backfill_gives_old_records_their_owner(storage: Storage, sealed: bool) -> None:
    """Records stored without an owner (before schema version 4) are found after a backfill."""
    clock = FrozenClock(T0)
    tracker = _tracker(storage, clock, sealed=sealed)
    made = [tracker.mask(ANA, conversation=f"o{i}", store="shop-a") for i in range(3)]
    other = tracker.mask(BIA, conversation="o9", store="shop-a")
    assert isinstance(storage, ErasureStorage)
    _drop_owners(storage)
    assert storage.owned(tracker.index.owner_key(ANA)) == []
    done = tracker.backfill_owners(batch_size=2)
    assert (done.scanned, done.filled, done.unreadable) == (4, 4, ())
    assert {r.key for r in storage.owned(tracker.index.owner_key(ANA))} == {a.key for a in made}
    assert [r.key for r in storage.owned(tracker.index.owner_key(BIA))] == [other.key]
    assert tracker.backfill_owners().scanned == 0
    # forget backfills by itself
    _drop_owners(storage)
    assert tracker.forget(ANA).aliases == 3


def test_backfill_reports_records_it_cannot_read() -> None:
    """An alias sealed with an address key the tracker lacks may be hers: the receipt says so."""
    clock = FrozenClock(T0)
    storage = MemoryStorage()
    index_key = secrets.token_urlsafe(32)
    old = _tracker(storage, clock, sealed=True, index_key=index_key)
    kept = old.mask(ANA, conversation="o1", store="shop-a")
    _drop_owners(storage)
    without_its_key = _tracker(storage, clock, sealed=True, index_key=index_key)
    receipt = without_its_key.forget(ANA)
    assert (receipt.aliases, receipt.unreadable) == (0, 1)
    record = storage.get(kept.key)
    assert record is not None
    assert record.owner is None


def _drop_owners(storage: Storage) -> None:
    """Make the stored aliases look like records of schema version 3 (no owner)."""
    if isinstance(storage, SQLStorage):
        with storage.engine.begin() as conn:
            conn.execute(sa.update(storage.tables.aliases).values(owner=None))
        return
    assert isinstance(storage, MemoryStorage)
    records = storage._aliases  # noqa: SLF001 - the test plays an older release
    for key, record in list(records.items()):
        records[key] = attrs.evolve(record, owner=None)


def test_receipt_is_plain_data() -> None:
    receipt = ErasureReceipt(aliases=2, entries=5, stores=1, conversations=2, unreadable=0, at=T0)
    assert receipt.to_dict() == {
        "aliases": 2,
        "entries": 5,
        "stores": 1,
        "conversations": 2,
        "unreadable": 0,
        "at": "2026-01-01T12:00:00.123456Z",
    }
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        receipt.aliases = 3  # type: ignore[misc]


# -- the command line and the server -----------------------------------------------------


def test_cli_forget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    flags = ["--db", db, f"--keys={secrets.token_urlsafe(32)}", "--domain", DOMAIN]
    flags += [f"--index-key={secrets.token_urlsafe(32)}"]  # a key may start with "-"
    monkeypatch.delenv("CT_ALIAS_ADDRESS_KEYS", raising=False)
    assert main(["db", "upgrade", "--db", db], out=StringIO()) == 0
    for order in ("1", "2"):
        assert main(["mask", ANA, "-c", order, *flags], out=StringIO()) == 0
    out = StringIO()
    assert main(["forget", ANA, *flags], out=out) == 0
    assert out.getvalue() == (
        "forgotten: 2 alias(es) in 1 store(s) and 2 conversation(s); "
        "0 timeline entr(y/ies) redacted\n"
    )
    out = StringIO()
    assert main(["forget", ANA, "--json", *flags], out=out) == 0
    data = json.loads(out.getvalue())
    assert (data["aliases"], data["entries"], data["stores"]) == (0, 0, 0)
    with SQLStorage(db) as storage:
        assert _traces(dump(storage)) == []


def test_cli_forget_bad_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    assert main(["db", "upgrade", "--db", db], out=StringIO()) == 0
    flags = ["--db", db, f"--keys={secrets.token_urlsafe(32)}", "--domain", DOMAIN]
    flags += [f"--index-key={secrets.token_urlsafe(32)}"]  # a key may start with "-"
    assert main(["forget", "ana.prado@", *flags], out=StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("ct-alias: error: not a valid e-mail address")
    assert "ana.prado" not in err


def test_serve_refuses_a_forgotten_alias(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CT_ALIAS_")},
        "CT_ALIAS_DB": f"sqlite:///{tmp_path / 'relay.db'}",
        "CT_ALIAS_KEYS": secrets.token_urlsafe(32),
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_INDEX_KEY": secrets.token_urlsafe(32),
        "CT_ALIAS_ADDRESS_KEYS": secrets.token_urlsafe(32),
    }
    cli(env, "db", "upgrade")
    alias = cli(env, "mask", ANA, "--conversation", "order-1")
    assert cli(env, "forget", ANA).startswith("forgotten: 1 alias(es)")
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    server = Serve(env, port)
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.ehlo("client.test")
            client.mail(CARRIER)
            code, text = client.rcpt(alias)
        assert code == 550
        assert b"5.2.1" in text
        assert ANA.encode() not in text
    finally:
        assert server.stop() == 0
        controller.stop()
    assert sink.received == []
    assert _traces(server.stderr) == []


# -- the migration from schema version 3 ---------------------------------------------------

VECTORS = Path(__file__).parent / "vectors"
V3 = json.loads((VECTORS / "schema_v3.json").read_text(encoding="utf-8"))
_DATETIMES = {"created_at", "expires_at", "ends_at", "revoked_at", "purged_at", "expired_at"}
_DATETIMES |= {"at", "applied_at", "updated_at"}


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k in _DATETIMES and v is not None else v
        for k, v in row.items()
    }


@pytest.fixture(params=["sqlite-file", "sqlite", "postgresql", "mariadb"])
def v3_loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    """A database of schema version 3: the file that release wrote, or its DDL and rows."""
    if request.param == "sqlite-file":
        path = tmp_path / "v3.sqlite"
        shutil.copyfile(VECTORS / "schema_v3.sqlite", path)
        with SQLStorage(f"sqlite:///{path}") as storage:
            yield storage
        return
    if request.param == "sqlite":
        target = Target("sqlite", f"sqlite:///{tmp_path / 'v3.db'}")
    else:
        found = request.getfixturevalue(request.param)
        assert isinstance(found, Target)
        target = found
    prefix = f"v3_{secrets.token_hex(3)}_"
    metadata, tables = build_v3_tables(prefix, target.options.get("schema"))
    storage = target.open(prefix=prefix)
    metadata.create_all(storage.engine)
    with storage.engine.begin() as conn:
        for name, table in tables.items():
            conn.execute(sa.insert(table), [_row(r) for r in V3["rows"][name]])
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
        metadata.drop_all(storage.engine)
        storage.close()


def test_schema_version_3_upgrades_and_its_people_can_be_forgotten(v3_loaded: SQLStorage) -> None:
    storage = v3_loaded
    assert storage.schema_version() == 3
    assert storage.upgrade() == SCHEMA_VERSION == 4
    assert storage.upgrade() == 4
    with storage.engine.connect() as conn:
        owners = conn.execute(sa.select(storage.tables.aliases.c.owner)).scalars().all()
    assert owners == [None] * len(V3["rows"]["aliases"])  # no keys in a migration: backfilled
    names = {
        ix["name"]
        for ix in sa.inspect(storage.engine).get_indexes(
            storage.tables.aliases.name, schema=storage.tables.aliases.schema
        )
    }
    assert storage.tables.aliases.name + "_owner_ix" in names
    clock = FrozenClock(datetime.fromisoformat(V3["now"]))
    tracker = Tracker(
        storage=storage,
        keys=V3["signing_keys"],
        default_policy=Policy(domain=V3["domain"]),
        clock=clock,
        index_key=V3["index_key"],
        address_keys=V3["address_keys"],
    )
    bia = tracker.timeline("3003", store="shop-a")
    places = [tuple(p.split("/")) for p in V3["aliases"]]
    person = V3["person"]
    assert person["name"] in _read_all(tracker, places)
    # the release's data still reads
    for address in V3["aliases"].values():
        assert tracker.unmask(address["customer"]).real_address == person["address"]

    receipt = tracker.forget(person["address"])

    assert (receipt.aliases, receipt.stores, receipt.conversations) == (3, 2, 3)
    assert receipt.entries == 3  # her three messages
    assert receipt.unreadable == 0
    readable = _read_all(tracker, [*places, ("shop-a", "4004")])
    dumped = dump(storage)
    for trace in (person["address"], person["local"], person["name"]):
        assert trace.lower() not in readable.lower()
        assert trace.lower() not in dumped.lower()
    assert tracker.timeline("3003", store="shop-a").to_json(include_real_addresses=True) == (
        bia.to_json(include_real_addresses=True)
    )
    assert tracker.unmask(V3["other"]["customer"]).real_address == V3["other"]["address"]
    assert tracker.forget(person["address"]).aliases == 0


def test_host_data_of_any_shape_is_read_and_scrubbed() -> None:
    """Host events may hold anything JSON: lists where refs are, nested texts, numbers."""
    clock = FrozenClock(T0)
    tracker = _tracker(MemoryStorage(), clock, sealed=False)
    tracker.mask(ANA, conversation="1001", store="shop-a")
    odd = {"ref": ["x"], "from": [{"ref": {"k": 1}}, "text"], "deep": [{"who": [ANA_NAME]}]}
    tracker.record_event("1001", "crm-sync", store="shop-a", data={**odd, "n": 1.5})
    tracker.record_event("1001", "crm-note", store="shop-a", data={"who": f"{ANA.upper()} ok"})
    receipt = tracker.forget(ANA)
    assert (receipt.aliases, receipt.entries) == (1, 1)  # her name is not known: only the address
    events = {e.name: dict(e.data) for e in tracker.timeline("1001", store="shop-a").events}
    assert events["crm-note"] == {"who": "[redacted]", "redacted": True}
    assert events["crm-sync"] == {**odd, "n": 1.5}


def test_rule_events_naming_her_alias_lose_their_reason() -> None:
    """A block of her alias (a conversation rule) keeps its effect, not its free text."""
    clock = FrozenClock(T0)
    tracker = _tracker(MemoryStorage(), clock, sealed=True)
    tracker.set_policy("shop-r", Policy(domain=DOMAIN, conversation_rules=True))
    alias = tracker.mask(ANA, conversation="1001", store="shop-r")
    tracker.block("1001", alias, store="shop-r", reason="insulted the support team")
    receipt = tracker.forget(ANA)
    assert (receipt.aliases, receipt.entries) == (1, 1)
    (blocked,) = [
        e for e in tracker.timeline("1001", store="shop-r").events if e.name == "sender-blocked"
    ]
    assert blocked.data["reason"] == "[redacted]"
    assert blocked.data["ref"] == alias.key
    assert isinstance(blocked.data["slot"], str)
    assert "[redacted]" not in blocked.data["slot"]


def test_a_moderation_refusal_of_mail_to_her_loses_its_reason() -> None:
    """A moderator's reason is free text: on an event naming her alias, it is redacted."""
    clock = FrozenClock(T0)
    tracker = _tracker(MemoryStorage(), clock, sealed=True)
    alias = tracker.mask(ANA, conversation="1001", store="shop-a")

    def no_links(view: MessageView) -> Verdict:
        del view
        return Verdict.refuse("links are not allowed for this customer")

    relay = Relay(tracker, moderators=[no_links])
    mail = f"From: <{CARRIER}>\r\nTo: {alias.address}\r\nSubject: x\r\n\r\nHi\r\n".encode()
    (refused,) = relay.handle(CARRIER, [alias.address], mail).outcomes
    assert (refused.code, refused.status) == (550, "5.7.1")
    receipt = tracker.forget(ANA)
    assert (receipt.aliases, receipt.entries) == (1, 1)
    (event,) = [
        e for e in tracker.timeline("1001", store="shop-a").events if e.name == "message-refused"
    ]
    assert event.data["reason"] == "[redacted]"
    assert (event.data["code"], event.data["ref"]) == (550, alias.key)
