"""Addresses encrypted at rest: sealing, rotation, tampering, and a database scan."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from attrs import evolve
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from ct_alias import (
    Alias,
    ConfigurationError,
    CorruptRecord,
    FrozenClock,
    MemoryStorage,
    OrderEvent,
    Policy,
    Role,
    Tracker,
    UnknownAddressKey,
)
from ct_alias._keys import check_key_strength
from ct_alias.crypto import (
    PREFIX,
    PREFIX_V2,
    AddressCipher,
    Cleartext,
    is_sealed,
)
from ct_alias.storage import Storage
from ct_alias.storage.sql import SQLStorage

from .conftest import DOMAIN

KEY_A = "address-key-a-0123456789abcdefghijklmnop"
KEY_B = "address-key-b-0123456789abcdefghijklmnop"


def make(
    store: Storage, clock: FrozenClock, keys: list[str] | None, *, plaintext: bool = False
) -> Tracker:
    tracker = Tracker(
        storage=store,
        keys=["c0YisWQfoflzBj-A1mU14PTwZfDHbcqjfxxwTRJSM6g"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="hMtk7oLlUfqlzya1F5_1DRb5uhpZjqICYaADCZpuCwI",
        address_keys=keys,
        allow_plaintext_addresses=plaintext,
    )
    tracker.set_policy("simple-shop", Policy(domain=DOMAIN, strategy="simple"))
    return tracker


def stored(store: Storage, alias: Alias) -> Alias:
    record = store.get(alias.key)
    assert isinstance(record, Alias)
    return record


# -- the cipher ----------------------------------------------------------------------


def test_seal_and_open() -> None:
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("Maria.Silva@example.com.br", context="k1:real")
    assert sealed.startswith(PREFIX_V2 + cipher.newest + ".")
    assert is_sealed(sealed)
    assert "maria" not in sealed.lower()
    assert cipher.open(sealed, context="k1:real") == "Maria.Silva@example.com.br"
    assert cipher.seal("a@b.example", context="k") != cipher.seal("a@b.example", context="k")
    assert cipher.open("plain@example.com", context="k", allow_plaintext=True) == (
        "plain@example.com"
    )
    with pytest.raises(CorruptRecord):
        cipher.open("plain@example.com", context="k")
    assert not cipher.needs_reseal(sealed)
    assert cipher.needs_reseal("plain@example.com")
    assert KEY_A not in repr(cipher)


def test_context_binds_a_value_to_its_record() -> None:
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("maria@example.com", context="k1:real")
    with pytest.raises(CorruptRecord) as info:
        cipher.open(sealed, context="k2:real")
    assert info.value.key_id == cipher.newest
    assert "maria" not in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],
        lambda s: s[:20] + s[21:],
        lambda s: s + "AAAA",
        lambda s: s.rpartition(".")[0] + ".!!!!",
    ],
)
def test_tampering_is_detected(damage) -> None:  # type: ignore[no-untyped-def]
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("maria@example.com", context="k")
    with pytest.raises(CorruptRecord):
        cipher.open(damage(sealed), context="k")


def test_a_retired_key_is_named() -> None:
    old = AddressCipher([KEY_A])
    sealed = old.seal("maria@example.com", context="k")
    with pytest.raises(UnknownAddressKey) as info:
        AddressCipher([KEY_B]).open(sealed, context="k")
    assert info.value.key_id == old.newest
    assert old.newest in str(info.value)
    with pytest.raises(UnknownAddressKey):
        Cleartext().open(sealed, context="k")


@pytest.mark.parametrize("keys", [[], [""], [None]])
def test_bad_keys(keys: list[object]) -> None:
    with pytest.raises(ConfigurationError):
        AddressCipher(keys)  # type: ignore[arg-type]


def test_address_keys_need_an_index_key(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError, match="index_key"):
        Tracker(
            storage=MemoryStorage(),
            keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
            default_policy=Policy(domain=DOMAIN),
            address_keys=[KEY_A],
        )


# -- the tracker ---------------------------------------------------------------------


def test_stores_never_see_plaintext(clock: FrozenClock) -> None:
    store = MemoryStorage()
    tracker = make(store, clock, [KEY_A])
    simple = tracker.mask("Maria.Silva@example.com.br", conversation="o1", store="simple-shop")
    assert simple.address.startswith("maria.silva@example.com.br-")
    assert simple.real_address == "Maria.Silva@example.com.br"
    record = stored(store, simple)
    assert is_sealed(record.address)
    assert is_sealed(record.real_address)
    assert tracker.unmask(simple.address) == simple
    assert (
        tracker.mask("maria.silva@example.com.br", conversation="o1", store="simple-shop") == simple
    )
    assert tracker.aliases("o1", store="simple-shop") == [simple]
    assert tracker.lookup(simple.address) == simple
    exported = tracker.timeline("o1", store="simple-shop").to_dict(include_real_addresses=True)
    assert exported["participants"][0]["realAddress"] == "Maria.Silva@example.com.br"


def test_rotation_and_resumption(clock: FrozenClock) -> None:
    store = MemoryStorage()
    with_a = make(store, clock, [KEY_A])
    aliases = [with_a.mask(f"zelda.{i:03}@example.com", conversation=f"o{i}") for i in range(25)]
    with_ab = make(store, clock, [KEY_A, KEY_B])
    fresh = with_ab.mask("link@example.com", conversation="o-new")
    seen = []

    def interrupt(progress):  # type: ignore[no-untyped-def]
        seen.append(progress)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with_ab.rotate_address_keys(batch_size=5, progress=interrupt)
    half = seen[-1]
    assert (half.scanned, half.done) == (10, False)
    assert 0 < half.resealed <= 10
    # only the B tracker can read everything now; resume where it stopped
    result = with_ab.rotate_address_keys(batch_size=5, after=half.last_key)
    assert result.done
    assert result.scanned == 26 - 10
    with_b = make(store, clock, [KEY_B])
    for alias in [*aliases, fresh]:
        assert with_b.unmask(alias.address).real_address == alias.real_address
    again = with_b.rotate_address_keys()
    assert (again.scanned, again.resealed) == (26, 0)


def test_dropping_a_key_too_early_is_reported(clock: FrozenClock) -> None:
    store = MemoryStorage()
    alias = make(store, clock, [KEY_A]).mask("maria@example.com", conversation="o1")
    with pytest.raises(UnknownAddressKey):
        make(store, clock, [KEY_B]).unmask(alias.address)
    with pytest.raises(UnknownAddressKey):
        Tracker(
            storage=store,
            keys=["c0YisWQfoflzBj-A1mU14PTwZfDHbcqjfxxwTRJSM6g"],
            default_policy=Policy(domain=DOMAIN),
            clock=clock,
            index_key="hMtk7oLlUfqlzya1F5_1DRb5uhpZjqICYaADCZpuCwI",
        ).unmask(alias.address)


def test_turning_encryption_on_later(clock: FrozenClock) -> None:
    store = MemoryStorage()
    plain = make(store, clock, None)
    alias = plain.mask("maria@example.com", conversation="o1")
    strict = make(store, clock, [KEY_A])
    with pytest.raises(CorruptRecord) as info:  # plaintext may have been planted
        strict.unmask(alias.address)
    assert info.value.key_id == "none"
    encrypted = make(store, clock, [KEY_A], plaintext=True)
    assert encrypted.unmask(alias.address) == alias
    refused = strict.rotate_address_keys()  # plaintext is sealed only when allowed
    assert (refused.resealed, refused.corrupt) == (0, (alias.key,))
    with pytest.raises(CorruptRecord):
        strict.unmask(alias.address)
    assert encrypted.rotate_address_keys().resealed == 1  # the migration: plaintext allowed
    assert strict.unmask(alias.address) == alias
    assert is_sealed(stored(store, alias).real_address)
    assert encrypted.unmask(alias.address) == alias
    with pytest.raises(ConfigurationError):
        plain.rotate_address_keys()


def test_a_planted_plaintext_address_is_refused(clock: FrozenClock) -> None:
    store = MemoryStorage()
    tracker = make(store, clock, [KEY_A])
    alias = tracker.mask("maria@example.com", conversation="o1")
    store._aliases[alias.key] = evolve(stored(store, alias), real_address="thief@evil.example")
    with pytest.raises(CorruptRecord):
        tracker.unmask(alias.address)


def test_tampered_record_is_reported(clock: FrozenClock) -> None:
    store = MemoryStorage()
    tracker = make(store, clock, [KEY_A])
    a = tracker.mask("maria@example.com", conversation="o1")
    b = tracker.mask("joao@example.com", conversation="o1")
    record_a, record_b = stored(store, a), stored(store, b)
    store._aliases[a.key] = evolve(record_a, real_address=record_b.real_address)
    with pytest.raises(CorruptRecord) as info:
        tracker.unmask(a.address)
    assert info.value.record == a.key + ":real"
    assert "joao" not in str(info.value)


# -- a stolen database -------------------------------------------------------------------


def scan_sql(store: SQLStorage) -> str:
    """Every text/binary value of every table of the store, as one string."""
    chunks = []
    with store.engine.connect() as conn:
        for table in store.tables.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        chunks.append(value.decode("utf-8", "replace"))
                    elif value is not None:
                        chunks.append(str(value))
    return "\n".join(chunks).lower()


def play(tracker: Tracker, count: int) -> list[str]:
    """Mask ``count`` customers and their store, with the order flow; return the addresses."""
    reals = []
    for i in range(count):
        order = f"order-{i}"
        customer = f"zelda.{i:04}@cliente{i % 7}.example.com"
        shop = f"vendas{i % 3}@loja-secreta.example.com"
        store_name = "simple-shop" if i % 2 else "default"
        tracker.mask(customer, conversation=order, store=store_name)
        tracker.mask(shop, conversation=order, store=store_name, role=Role.STORE)
        if i % 25 == 0:
            tracker.notify(
                order,
                OrderEvent.PAYMENT_APPROVED,
                subject="Pagamento aprovado",
                text="Seu pagamento foi aprovado.",
                store=store_name,
            )
            first = tracker.aliases(order, store=store_name)[0]
            tracker.unmask(first.address, reason="carrier notification")
        reals += [customer, shop]
    return reals


def test_a_stolen_database_reveals_no_address(sql_store: SQLStorage, clock: FrozenClock) -> None:
    tracker = make(sql_store, clock, [KEY_A])
    reals = play(tracker, 300)
    dump = scan_sql(sql_store)
    assert "zelda" not in dump
    assert "loja-secreta" not in dump
    for real in set(reals):
        assert real.lower() not in dump
        assert real.partition("@")[0].lower() not in dump
    # and everything still works
    assert (
        tracker.timeline("order-0").to_dict(include_real_addresses=True)["participants"][0][
            "realAddress"
        ]
        == "zelda.0000@cliente0.example.com"
    )
    assert json.dumps(tracker.timeline("order-25", store="simple-shop").to_dict())


def test_without_keys_the_same_database_shows_addresses(
    sql_store: SQLStorage, clock: FrozenClock
) -> None:
    # the control experiment: the scan finds plaintext when encryption is off
    tracker = make(sql_store, clock, None)
    play(tracker, 3)
    assert "zelda.0001" in scan_sql(sql_store)


def test_rotation_on_sql(sql_store: SQLStorage, clock: FrozenClock) -> None:
    with_a = make(sql_store, clock, [KEY_A])
    aliases = [with_a.mask(f"zelda.{i}@example.com", conversation="o1") for i in range(12)]
    with_ab = make(sql_store, clock, [KEY_A, KEY_B])
    assert with_ab.rotate_address_keys(batch_size=5).resealed == 12
    with_b = make(sql_store, clock, [KEY_B])
    assert [with_b.unmask(a.address).real_address for a in aliases] == [
        a.real_address for a in aliases
    ]
    clock.advance(timedelta(days=1))
    assert with_b.purge() == 0


# -- plaintext that looks like a sealed value ----------------------------------------

# made with secrets.token_urlsafe(32)
INDEX_KEY = "3Pz4mYQ2rJ0d8nq2xK0fSg1l9bXkV6tW5uHc7eRaLwM"
LOOKALIKE = "ct1.maria@example.com"  # a real address may start with the sealed prefix


def test_an_address_starting_with_the_prefix_is_not_sealed() -> None:
    assert LOOKALIKE.startswith(PREFIX)
    assert not is_sealed(LOOKALIKE)
    assert not is_sealed("CT1.abcdef01.payload")  # the prefix is lower case
    assert is_sealed(AddressCipher([KEY_A]).seal(LOOKALIKE, context="k"))


def test_cleartext_returns_a_lookalike_address_unchanged() -> None:
    cleartext = Cleartext()
    assert cleartext.open(LOOKALIKE, context="k") == LOOKALIKE
    assert cleartext.seal(LOOKALIKE, context="k") == LOOKALIKE
    assert not cleartext.needs_reseal(LOOKALIKE)


def test_cipher_treats_a_lookalike_address_as_plaintext() -> None:
    cipher = AddressCipher([KEY_A])
    assert cipher.open(LOOKALIKE, context="k", allow_plaintext=True) == LOOKALIKE
    with pytest.raises(CorruptRecord):
        cipher.open(LOOKALIKE, context="k")
    assert cipher.needs_reseal(LOOKALIKE)
    sealed = cipher.seal(LOOKALIKE, context="k")
    assert cipher.open(sealed, context="k") == LOOKALIKE


@pytest.mark.parametrize("address_keys", [None, [KEY_A]])
def test_a_lookalike_address_is_masked_and_unmasked(
    clock: FrozenClock, address_keys: list[str] | None
) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["vBtwSxoVVB5A928j8qqagnC5JLrtRBEQmcJMqGVXqIA"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
        address_keys=address_keys,
    )
    alias = tracker.mask(LOOKALIKE, conversation="o1")
    assert tracker.unmask(alias.address).real_address == LOOKALIKE
    assert tracker.mask(LOOKALIKE, conversation="o1") == alias


def test_needs_reseal_compares_the_whole_key_id() -> None:
    both = AddressCipher([KEY_A, KEY_B])
    old = AddressCipher([KEY_A]).seal("maria@example.com", context="k")
    new = both.seal("maria@example.com", context="k")
    assert both.needs_reseal(old)
    assert not both.needs_reseal(new)
    # the newest id followed by anything but "." is not the newest key's value
    assert both.needs_reseal(PREFIX + both.newest + "x" + new[len(PREFIX) + 8 :])
    assert both.key_ids == [AddressCipher([KEY_A]).newest, AddressCipher([KEY_B]).newest]


# -- the sealed format, for every length -----------------------------------------------


def test_every_sealed_value_is_exactly_the_specified_encoding() -> None:
    """``ct2.<id>.<base64url(nonce ‖ AES-GCM)>`` without padding, whatever the length.

    A thousand values of every length modulo 3 (each padding case), so that a
    change to padding or to the alphabet shows whatever the random nonces.
    """
    cipher = AddressCipher([KEY_A])
    derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + KEY_A.encode()).digest()
    for n in range(1000):
        text = "m" * (n % 40) + "@example.com"
        context = f"{n:032x}:real"
        sealed = cipher.seal(text, context=context)
        head, _, payload = sealed.rpartition(".")
        assert head == PREFIX_V2 + cipher.newest
        assert "=" not in payload
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        again = AESGCM(derived).encrypt(raw[:12], text.encode(), context.encode())
        expected = base64.urlsafe_b64encode(raw[:12] + again).decode().rstrip("=")
        assert payload == expected
        assert cipher.open(sealed, context=context) == text


def test_bytes_address_keys_are_their_utf8_strings() -> None:
    text_key = "chave-ü-" + KEY_A
    as_text, as_bytes = AddressCipher([text_key]), AddressCipher([text_key.encode("utf-8")])
    assert as_text.key_ids == as_bytes.key_ids
    sealed = as_bytes.seal("maria@example.com", context="k")
    assert as_text.open(sealed, context="k") == "maria@example.com"


@pytest.mark.parametrize("extra", [".x", ".AAAA", ".ct1"])
def test_a_value_with_an_extra_dot_is_corrupt_not_an_unknown_key(extra: str) -> None:
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("maria@example.com", context="k")
    with pytest.raises(CorruptRecord) as info:
        cipher.open(sealed + extra, context="k")
    assert info.value.key_id == cipher.newest


# -- key strength, and what a refusal names ------------------------------------------


@pytest.mark.parametrize(
    ("key", "strong"),
    [
        ("k" * 15, False),
        ("k" * 16, True),
        ("é" * 7 + "k", False),  # 15 bytes of UTF-8
        ("é" * 8, True),  # 8 characters, 16 bytes: counted in bytes
        (b"k" * 15, False),
        (b"k" * 16, True),
    ],
)
def test_keys_of_at_least_128_bits_are_strong(key: str | bytes, strong: bool) -> None:
    if strong:
        check_key_strength("address key", [KEY_A, key])
    else:
        with pytest.raises(ConfigurationError, match="address key too short"):
            check_key_strength("address key", [KEY_A, key])


def test_a_refused_value_names_its_record() -> None:
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("maria@example.com", context="k1:real")
    with pytest.raises(CorruptRecord) as info:
        cipher.open(sealed, context="k2:real")
    assert info.value.record == "k2:real"


def test_cleartext_names_the_key_of_a_value_with_an_extra_dot() -> None:
    cipher = AddressCipher([KEY_A])
    sealed = cipher.seal("maria@example.com", context="k")
    with pytest.raises(UnknownAddressKey) as info:
        Cleartext().open(sealed + ".x", context="k")
    assert info.value.key_id == cipher.newest


def test_cleartext_sealer() -> None:
    sealer = Cleartext()
    assert sealer.seal("maria@example.com", context="k:real") == "maria@example.com"
    assert sealer.open("maria@example.com", context="k:real") == "maria@example.com"
    assert not sealer.needs_reseal("anything")
    with pytest.raises(UnknownAddressKey) as info:
        sealer.open(f"{PREFIX}key1.payload", context="k:real")
    assert info.value.key_id == "key1"


def test_address_encryption_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ct_alias import MissingExtra
    from ct_alias.crypto import _aesgcm

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(MissingExtra) as info:
        _aesgcm()
    assert info.value.extra == "crypto"


def test_record_context_is_a_compact_json_array() -> None:
    """The associated data of format 2 is persisted in effect: pin its exact text."""
    from ct_alias.crypto import record_context

    assert (
        record_context(store="s", conversation="c", role="customer", key="k", field="alias")
        == '["ct_alias.record.v2","s","c","customer","k","alias",""]'
    )
    assert (
        record_context(
            store="loja-ç",
            conversation="pedido-1",
            role="store",
            key="k",
            field="real",
            address="x@ct.example.com",
        )
        == '["ct_alias.record.v2","loja-ç","pedido-1","store","k","real","x@ct.example.com"]'
    )


# Parts of a context as hosts and records may hold them: quotes, backslashes, control
# characters and non-ASCII text take the encoder's path, everything else the direct one.
_CONTEXT_TEXT = st.text(alphabet=st.sampled_from('ab"\\\x00\x1f\x7f \u00e7\u2028\U0001f600,:[]'))


@given(parts=st.tuples(*[_CONTEXT_TEXT] * 6))
def test_record_context_is_json_dumps_of_its_parts(
    parts: tuple[str, str, str, str, str, str],
) -> None:
    """Built directly when no part needs escaping, it is still exactly what JSON writes."""
    from ct_alias.crypto import context_from_parts, record_context

    store, conversation, role, key, field, address = parts
    expected = json.dumps(["ct_alias.record.v2", *parts], ensure_ascii=False, separators=(",", ":"))
    assert context_from_parts(parts) == expected
    assert (
        record_context(
            store=store,
            conversation=conversation,
            role=role,
            key=key,
            field=field,
            address=address,
        )
        == expected
    )
    assert json.loads(expected) == ["ct_alias.record.v2", *parts]


def test_record_context_escapes_what_json_escapes() -> None:
    """A quote, a backslash or a control character in a part is escaped, never run together."""
    from ct_alias.crypto import context_from_parts

    assert context_from_parts(('a"', "b\\", "c\n", "d", "e", "")) == (
        '["ct_alias.record.v2","a\\"","b\\\\","c\\n","d","e",""]'
    )
    # a part that carries the separator cannot pass for two parts
    assert context_from_parts(('a","b', "c", "d", "e", "f", "")) != context_from_parts(
        ("a", "b", "c", "d", "e", "f")
    )


@pytest.mark.parametrize("char", [chr(c) for c in range(0x20)] + ["\\", '"', "\x7f", "~"])
def test_record_context_of_ascii_parts_with_each_special_character(char: str) -> None:
    """ASCII parts take the one-pass check: each character JSON escapes sends them to the
    encoder, and the rest (DEL, ``~``) are written as they are, either way JSON's text."""
    from ct_alias.crypto import context_from_parts

    parts = ("s", f"order{char}1", "customer", "k", "real", "x@ct.example.com")
    expected = json.dumps(["ct_alias.record.v2", *parts], ensure_ascii=False, separators=(",", ":"))
    assert context_from_parts(parts) == expected


def test_record_context_of_a_part_that_is_not_text_is_what_json_makes_of_it() -> None:
    """An untyped caller's non-text part goes to the encoder, as before, not to str.join."""
    from ct_alias.crypto import context_from_parts

    parts: Any = ("s", "c", "customer", 7, "real", "")
    assert context_from_parts(parts) == '["ct_alias.record.v2","s","c","customer",7,"real",""]'


@given(payload=st.text(alphabet=st.sampled_from("AZaz09-_+/=.é \n"), max_size=40))
def test_payload_decoding_is_urlsafe_b64decode(payload: str) -> None:
    """The direct decoding gives the bytes of the standard library's, or fails where it fails.

    Either way a failure is a ValueError (binascii.Error, or UnicodeEncodeError for
    non-ASCII text), which opening turns into CorruptRecord.
    """
    from ct_alias.crypto import _unpadded_b64decode

    try:
        expected: bytes | None = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except ValueError:  # binascii.Error is one
        expected = None
    try:
        got: bytes | None = _unpadded_b64decode(payload)
    except ValueError:
        got = None
    assert got == expected


@pytest.mark.parametrize("payload", ["é" * 40, "A" * 41, "!!!!"])
def test_a_payload_that_does_not_decode_is_corrupt(payload: str) -> None:
    """Non-ASCII text or broken base64 after a known key id: CorruptRecord, naming no secret."""
    cipher = AddressCipher([KEY_A])
    stored = f"{PREFIX_V2}{cipher.newest}.{payload}"
    with pytest.raises(CorruptRecord) as info:
        cipher.open(stored, context="ctx", record="k:real")
    assert payload not in str(info.value)
    assert KEY_A not in str(info.value)
