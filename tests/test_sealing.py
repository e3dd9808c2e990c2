"""Sealed records are bound to their place; rotation honours the plaintext rule.

The attacker here can write to the database but holds no key. Whatever
column that routes mail he changes on a sealed record (store, conversation,
role, key; or the sealed values swapped between records), the record no
longer opens: ``CorruptRecord``, never mail to him. A plaintext address he
plants is refused on read, and a routine key rotation no longer launders it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from attrs import evolve

from ct_alias import Alias, AliasStatus, FrozenClock, OrderEvent, Policy, Role, Tracker, _sealing
from ct_alias.cli import main
from ct_alias.crypto import PREFIX, PREFIX_V2, AddressCipher, record_context
from ct_alias.errors import CorruptRecord
from ct_alias.storage import MemoryStorage, Storage
from ct_alias.storage.sql import SQLStorage
from ct_alias.testing import T0, make_alias

from .conftest import DOMAIN, START
from .sql_servers import clear

SIGNING_KEY = "eVq1yR8nK3tZ0wB6mC9xL2fH5gJ7dS4aP1oU8iY3rT6"
INDEX_KEY = "Nf4hQ8zL1cV6bX3mK9sD2gJ7tR5wY0pA8eU1iO4nB7"
OLD_KEY = "K7dW2qN9xF4mB1vC8zH5jL3tG6sR0pY4aE7uI2oM9nQ"
NEW_KEY = "z3Rt8YpL1mQ6wV9cX2bN5kH7jG4fD0sA3eU8iO1nM6"


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


def make(storage: Storage, keys: list[str] | None = None, *, plaintext: bool = False) -> Tracker:
    tracker = Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(START),
        index_key=INDEX_KEY,
        address_keys=[NEW_KEY] if keys is None else keys,
        allow_plaintext_addresses=plaintext,
    )
    tracker.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    return tracker


def write(storage: Storage, row: str, **columns: str | None) -> None:
    """What an attacker with write access does: change columns of one row."""
    if isinstance(storage, SQLStorage):
        table = storage.tables.aliases
        with storage.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.key == row).values(**columns))
        return
    assert isinstance(storage, MemoryStorage)
    record = storage.get(row)
    assert isinstance(record, Alias)
    changed = evolve(record, **{k: Role(v) if k == "role" and v else v for k, v in columns.items()})  # type: ignore[arg-type]
    # the memory storage's indexes are its "columns" too
    storage._aliases.pop(row)
    storage._aliases[changed.key] = changed
    for keys in storage._by_conversation.values():
        if row in keys:
            keys.remove(row)
    place = (changed.store, changed.conversation)
    storage._by_conversation.setdefault(place, []).append(changed.key)
    if record.slot is not None and storage._slots.get(record.slot) == row:
        del storage._slots[record.slot]
    if changed.slot is not None:
        storage._slots[changed.slot] = changed.key


def order(tracker: Tracker, store: str, conversation: str, buyer: str) -> tuple[Alias, Alias]:
    customer = tracker.mask(buyer, conversation=conversation, store=store)
    shop = tracker.mask(
        f"sales@{store}.example", conversation=conversation, store=store, role=Role.STORE
    )
    return customer, shop


def test_new_values_are_format_2(storage: Storage) -> None:
    tracker = make(storage)
    customer, _ = order(tracker, "shop-a", "1001", "ana@buyer.example")
    record = storage.get(customer.key)
    assert isinstance(record, Alias)
    assert record.address.startswith(PREFIX_V2)
    assert record.real_address.startswith(PREFIX_V2)


def test_moving_a_row_to_the_victims_conversation_is_refused(storage: Storage) -> None:
    """Issue #15, 2: the thief moved his own alias row into the victim's order."""
    tracker = make(storage)
    order(tracker, "shop-a", "1001", "victim@buyer.example")
    mine, _ = order(tracker, "shop-a", "666", "attacker@evil.example")
    tracker.revoke(tracker.aliases("1001", store="shop-a")[0])  # the victim's alias is gone
    write(storage, mine.key, conversation="1001")
    with pytest.raises(CorruptRecord) as info:
        tracker.notify("1001", OrderEvent.INVOICED, subject="s", text="t", store="shop-a")
    assert "evil" not in str(info.value)
    assert "attacker" not in str(info.value)
    with pytest.raises(CorruptRecord):
        tracker.timeline("1001", store="shop-a")


@pytest.mark.parametrize(
    ("column", "value"),
    [("store", "shop-b"), ("conversation", "other"), ("role", "store"), ("key", "0" * 32)],
)
def test_every_routing_column_is_bound(storage: Storage, column: str, value: str) -> None:
    tracker = make(storage)
    customer, _ = order(tracker, "shop-a", "1001", "ana@buyer.example")
    write(storage, customer.key, **{column: value})
    key = value if column == "key" else customer.key
    record = storage.get(key)
    assert isinstance(record, Alias)
    with pytest.raises(CorruptRecord):
        tracker._records.present(record)
    if column != "key":
        with pytest.raises(CorruptRecord):
            tracker.unmask(customer.address)


def test_sealed_values_swapped_between_records_do_not_open(storage: Storage) -> None:
    tracker = make(storage)
    victim, _ = order(tracker, "shop-a", "1001", "victim@buyer.example")
    mine, _ = order(tracker, "shop-a", "1002", "attacker@evil.example")
    theirs = storage.get(mine.key)
    assert isinstance(theirs, Alias)
    write(storage, victim.key, real_address=theirs.real_address)
    with pytest.raises(CorruptRecord):
        tracker.unmask(victim.address)


def test_a_slot_moved_to_another_address_is_refused(storage: Storage) -> None:
    """A slot column copied onto the attacker's row would make mask() hand out his alias."""
    tracker = make(storage)
    victim, _ = order(tracker, "shop-a", "1001", "victim@buyer.example")
    mine = tracker.mask("attacker@evil.example", conversation="1001", store="shop-a")
    slot = victim.slot
    assert slot is not None
    write(storage, victim.key, slot=None)
    write(storage, mine.key, slot=slot)
    with pytest.raises(CorruptRecord):
        tracker.mask("victim@buyer.example", conversation="1001", store="shop-a")


def test_format_1_values_open_and_rotation_upgrades_them() -> None:
    """A record written by the previous release (``ct1.``) opens, and rotation makes it ``ct2.``."""
    storage = MemoryStorage()
    tracker = make(storage, [OLD_KEY])
    customer, _ = order(tracker, "shop-a", "1001", "ana@buyer.example")
    cipher = AddressCipher([OLD_KEY])
    legacy = _format_1(cipher, customer)
    write(storage, customer.key, address=legacy.address, real_address=legacy.real_address)
    assert tracker.unmask(customer.address).real_address == "ana@buyer.example"
    rotated = make(storage, [OLD_KEY, NEW_KEY]).rotate_address_keys()
    assert rotated.corrupt == ()
    assert rotated.resealed == 2
    record = storage.get(customer.key)
    assert isinstance(record, Alias)
    assert record.real_address.startswith(f"{PREFIX_V2}{AddressCipher([NEW_KEY]).newest}.")
    assert make(storage, [NEW_KEY]).unmask(customer.address).real_address == "ana@buyer.example"
    # a format 1 value moved to another conversation still opens: that is why it is upgraded
    write(storage, customer.key, address=legacy.address, real_address=legacy.real_address)
    write(storage, customer.key, conversation="other")
    moved = storage.get(customer.key)
    assert isinstance(moved, Alias)
    assert make(storage, [OLD_KEY])._records.present(moved).real_address


def _format_1(cipher: AddressCipher, alias: Alias) -> Alias:
    """The record as the previous release sealed it: ``ct1.``, bound to key and field only."""
    import base64
    import hashlib
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + OLD_KEY.encode()).digest()

    def seal(text: str, context: str) -> str:
        nonce = os.urandom(12)
        body = AESGCM(derived).encrypt(nonce, text.encode(), context.encode())
        payload = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
        return f"{PREFIX}{cipher.newest}.{payload}"

    return evolve(
        alias,
        address=seal(alias.address, alias.key + ":alias"),
        real_address=seal(alias.real_address, alias.key + ":real"),
    )


# -- rotation and plaintext ----------------------------------------------------------


def test_rotation_does_not_launder_a_planted_plaintext(storage: Storage) -> None:
    """Issue #15, 3: a planted address stays refused through a routine ``keys rotate``."""
    tracker = make(storage, [OLD_KEY])
    aliases = [order(tracker, "shop-a", f"o{i}", f"buyer{i}@buyer.example")[0] for i in range(5)]
    planted = aliases[2]
    write(storage, planted.key, real_address="attacker@evil.example")
    rotating = make(storage, [OLD_KEY, NEW_KEY])
    result = rotating.rotate_address_keys(batch_size=3)
    assert result.done
    assert result.corrupt == (planted.key,)
    assert result.resealed == 2 * len(aliases) - 1  # every other record, both its values
    with pytest.raises(CorruptRecord):
        rotating.unmask(planted.address)
    for alias in aliases:
        if alias is not planted:
            assert rotating.unmask(alias.address).real_address == alias.real_address
    # only a deliberate migration seals plaintext
    migrating = make(storage, [OLD_KEY, NEW_KEY], plaintext=True)
    assert migrating.rotate_address_keys().corrupt == ()
    assert migrating.unmask(planted.address).real_address == "attacker@evil.example"


def test_cli_rotate_reports_corrupt_records_and_keeps_the_old_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ct.db'}"
    with SQLStorage(url) as storage:
        storage.upgrade()
        tracker = make(storage, [OLD_KEY])
        customer, _ = order(tracker, "shop-a", "1001", "ana@buyer.example")
        write(storage, customer.key, real_address="attacker@evil.example")
    for name, value in {
        "CT_ALIAS_DB": url,
        "CT_ALIAS_KEYS": SIGNING_KEY,
        "CT_ALIAS_INDEX_KEY": INDEX_KEY,
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_ADDRESS_KEYS": f"{OLD_KEY},{NEW_KEY}",
    }.items():
        monkeypatch.setenv(name, value)
    import io

    out = io.StringIO()
    assert main(["keys", "rotate"], out=out) == 1
    text = out.getvalue()
    assert "do not open" in text
    assert customer.key in text
    assert "can now be removed" not in text
    assert "attacker" not in text + capsys.readouterr().err


def test_record_context_keeps_parts_apart() -> None:
    one = record_context(store="ab", conversation="c", role="customer", key="k", field="real")
    two = record_context(store="a", conversation="bc", role="customer", key="k", field="real")
    assert one != two


# -- personal text on the timeline ---------------------------------------------------


LETTER = (
    "From: Zelda Quintanilha <zelda.quintanilha@cliente.example>\r\n"
    "To: Loja <{store}>\r\n"
    "Cc: Tobias Terceiro <tobias.terceiro@outro.example>\r\n"
    "Subject: Pedido da Zelda Quintanilha\r\n"
    "Message-ID: <zelda-quintanilha-1@cliente.example>\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Oi, aqui é a Zelda Quintanilha (zelda.quintanilha@cliente.example), cadê meu pedido?\r\n"
    "--b\r\nContent-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename=rg-zelda-quintanilha.pdf\r\n\r\nJVBERi0=\r\n"
    "--b--\r\n"
)
SECRETS = ("zelda", "quintanilha", "tobias", "terceiro", "rg-zelda")


def _dump(storage: Storage) -> str:
    """Everything the database holds, as text (what a thief reads)."""
    if isinstance(storage, MemoryStorage):
        return repr(storage.__dict__).lower()
    assert isinstance(storage, SQLStorage)
    chunks = []
    with storage.engine.connect() as conn:
        for table in (storage.tables.aliases, storage.tables.timeline):
            for row in conn.execute(sa.select(table)):
                chunks += [str(v) for v in row]
    return "\n".join(chunks).lower()


def test_timeline_text_is_sealed_and_timeline_opens_it(storage: Storage) -> None:
    tracker = make(storage)
    customer, shop = order(tracker, "shop-a", "1001", "zelda.quintanilha@cliente.example")
    letter = LETTER.format(store=shop.address).encode()
    entry = tracker.record_message("1001", letter, direction="inbound", store="shop-a")
    again = tracker.record_message("1001", letter, direction="inbound", store="shop-a")
    assert again == entry
    dump = _dump(storage)
    for secret in SECRETS:
        assert secret not in dump, secret
    (message,) = tracker.timeline("1001", store="shop-a").messages
    assert message == entry
    assert message.data["subject"] == "Pedido da Zelda Quintanilha"
    assert "cadê meu pedido" in message.data["firstWords"]
    assert message.data["attachmentNames"] == ["rg-zelda-quintanilha.pdf"]
    assert message.data["from"][0] == {
        "name": "Zelda Quintanilha",
        "ref": customer.key,
        "role": "customer",
    }
    assert message.data["cc"] == [
        {"name": "Tobias Terceiro", "address": "tobias.terceiro@outro.example"}
    ]
    assert "sealed" not in message.data
    exported = tracker.timeline("1001", store="shop-a").to_dict()
    assert exported["messages"][0]["subject"] == "Pedido da Zelda Quintanilha"


def test_a_sealed_text_moved_to_another_conversation_does_not_open() -> None:
    storage = MemoryStorage()
    tracker = make(storage)
    _, shop = order(tracker, "shop-a", "1001", "zelda.quintanilha@cliente.example")
    letter = LETTER.format(store=shop.address).encode()
    tracker.record_message("1001", letter, direction="inbound", store="shop-a")
    (stored,) = [e for e in storage.entries("1001", store="shop-a") if e.kind.value == "message"]
    storage.append(evolve(stored, conversation="2002", seq=None))
    with pytest.raises(CorruptRecord):
        tracker.timeline("2002", store="shop-a")


def test_without_address_keys_timeline_text_is_kept_as_it_came() -> None:
    storage = MemoryStorage()
    tracker = Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(START),
        index_key=INDEX_KEY,
    )
    _, shop = order(tracker, "shop-a", "1001", "zelda.quintanilha@cliente.example")
    tracker.record_message(
        "1001", LETTER.format(store=shop.address).encode(), direction="inbound", store="shop-a"
    )
    (stored,) = [e for e in storage.entries("1001", store="shop-a") if e.kind.value == "message"]
    assert stored.data["subject"] == "Pedido da Zelda Quintanilha"


def test_records_get_their_addresses_with_every_other_field_kept() -> None:
    # _sealing copies an alias field by field to swap its addresses; a new field must be copied.
    assert [f.name for f in attrs.fields(Alias)] == [
        "address",
        "real_address",
        "conversation",
        "store",
        "role",
        "strategy",
        "created_at",
        "expires_at",
        "status",
        "ends_at",
        "revoked_at",
        "key",
        "slot",
        "owner",
    ]
    record = make_alias(ends_at=T0, revoked_at=T0, status=AliasStatus.REVOKED, owner="o")
    swapped = _sealing._with_addresses(record, "a", "b")
    expected = attrs.evolve(record, address="a", real_address="b")
    assert swapped == expected
    # a field left out of eq must be copied too
    assert attrs.asdict(swapped) == attrs.asdict(expected)
