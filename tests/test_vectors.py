"""Known-answer vectors: the formats in circulation and in databases must never change.

``tests/vectors/formats.json`` was written once by ``tests/vectors/make_vectors.py``
and is the authority: these tests compare today's code with it, and never
regenerate it. A failure here means a change would invalidate aliases already
handed out or addresses already sealed in a database. Everything is reached
through the public modules, so moving code around cannot hide a change.

Several tests also recompute a value from the written specification
(docs/formats.rst, docs/security.rst) with the standard library and
``cryptography`` alone, so the derivation constants are pinned twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ct_alias import (
    Alias,
    AliasCodec,
    AliasStatus,
    CorruptRecord,
    ForgedAlias,
    FrozenClock,
    MemoryStorage,
    Policy,
    Role,
    Tracker,
    UnknownAddressKey,
    normalize_address,
)
from ct_alias.blind_index import BlindIndex
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1, TokenFormat
from ct_alias.crypto import PREFIX, PREFIX_V2, AddressCipher, Cleartext, is_sealed, record_context
from ct_alias.strategies import ComplexStrategy, SimpleStrategy

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "formats.json").read_text(encoding="utf-8")
)
SIGNING_KEYS: list[str] = VECTORS["signing_keys"]
BUILTIN = {COMPLEX_V1.name: COMPLEX_V1, SIMPLE_V1.name: SIMPLE_V1}


def _format(spec: dict[str, Any]) -> TokenFormat:
    fmt = TokenFormat(
        version=spec["version"],
        id_size=spec["id_size"],
        mac_size=spec["mac_size"],
        name=spec["name"],
    )
    if fmt.name in BUILTIN:  # the built-in formats themselves must not drift
        assert BUILTIN[fmt.name] == fmt
    return fmt


def _ids(cases: list[dict[str, Any]], field: str) -> list[str]:
    return [str(case[field]) for case in cases]


# -- tokens (ct_alias.codec) -----------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=_ids(VECTORS["tokens"], "text"))
def test_token_encodes_to_its_vector(vector: dict[str, Any]) -> None:
    codec = AliasCodec(SIGNING_KEYS[: vector["signing_key"] + 1])
    text = codec.encode(
        _format(vector["format"]),
        datetime.fromisoformat(vector["expires_at"]),
        bind=vector["bind"].encode("ascii"),
        token_id=bytes.fromhex(vector["id"]),
    )
    assert text == vector["text"]


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=_ids(VECTORS["tokens"], "text"))
def test_token_decodes_to_its_vector(vector: dict[str, Any]) -> None:
    fmt = _format(vector["format"])
    token = AliasCodec(SIGNING_KEYS).decode(
        fmt, vector["text"].upper(), bind=vector["bind"].encode("ascii")
    )
    assert token.format == fmt
    assert token.id == bytes.fromhex(vector["id"])
    assert token.expires_at == datetime.fromisoformat(vector["expires_at"])
    assert token.text == vector["text"]


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=_ids(VECTORS["tokens"], "text"))
def test_token_layout_follows_the_specification(vector: dict[str, Any]) -> None:
    """base32hex(version·8 ‖ id ‖ expires ‖ HMAC-SHA256(derived key, body ‖ bind)[:mac])."""
    fmt = _format(vector["format"])
    text = vector["text"]
    raw = bytes.fromhex(vector["bytes"])
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    assert text == base64.b32hexencode(raw).decode("ascii").lower()
    assert set(text) <= set(alphabet)
    assert text[0] == alphabet[fmt.version]
    assert len(text) == len(raw) * 8 // 5
    body, mac = raw[: -fmt.mac_size], raw[-fmt.mac_size :]
    assert body[0] == fmt.version << 3
    assert body[1:-4] == bytes.fromhex(vector["id"])
    expires = datetime.fromisoformat(vector["expires_at"])
    assert int.from_bytes(body[-4:], "big") == int(expires.timestamp())
    # itsdangerous' Signer "hmac" key derivation: HMAC-SHA256(secret, salt)
    secret = SIGNING_KEYS[vector["signing_key"]].encode("ascii")
    derived = hmac.new(secret, VECTORS["codec_salt"].encode("ascii"), hashlib.sha256).digest()
    full = hmac.new(derived, body + vector["bind"].encode("ascii"), hashlib.sha256).digest()
    assert mac == full[: fmt.mac_size]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["tokens"] if v["signing_key"] == 0],
    ids=lambda v: v["text"],
)
def test_retired_signing_key_no_longer_verifies_its_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(ForgedAlias):
        AliasCodec(SIGNING_KEYS[1:]).decode(
            _format(vector["format"]), vector["text"], bind=vector["bind"].encode("ascii")
        )


def test_the_newest_key_signs() -> None:
    """With both keys listed, encoding gives the text of the key-1 vector."""
    codec = AliasCodec(SIGNING_KEYS)
    for vector in VECTORS["tokens"]:
        if vector["signing_key"] != 1:
            continue
        text = codec.encode(
            _format(vector["format"]),
            datetime.fromisoformat(vector["expires_at"]),
            bind=vector["bind"].encode("ascii"),
            token_id=bytes.fromhex(vector["id"]),
        )
        assert text == vector["text"]


# -- aliases (ct_alias.strategies, Tracker.verify) -------------------------------------


def _strategy(name: str, codec: AliasCodec) -> ComplexStrategy | SimpleStrategy:
    return ComplexStrategy(codec) if name == "complex" else SimpleStrategy(codec)


@pytest.mark.parametrize("vector", VECTORS["aliases"], ids=_ids(VECTORS["aliases"], "alias"))
def test_strategy_reads_its_alias_vector(vector: dict[str, Any]) -> None:
    local, _, domain = vector["alias"].rpartition("@")
    strategy = _strategy(vector["strategy"], AliasCodec(SIGNING_KEYS))
    token = strategy.read(local, domain, alias_domain=vector["alias_domain"])
    assert token is not None
    assert token.id == bytes.fromhex(vector["id"])
    assert token.expires_at == datetime.fromisoformat(vector["expires_at"])


@pytest.mark.parametrize("vector", VECTORS["aliases"], ids=_ids(VECTORS["aliases"], "alias"))
def test_alias_vector_spells_its_real_address(vector: dict[str, Any]) -> None:
    """The simple grammar: ``local@real-domain-<tag>.<alias-domain>``, parsed from the right."""
    local, _, domain = vector["alias"].rpartition("@")
    if vector["strategy"] == "complex":
        assert domain == vector["alias_domain"]
        assert len(local) == COMPLEX_V1.length
        assert local.startswith("1")
        return
    real_domain, _, tag = domain.removesuffix("." + vector["alias_domain"]).rpartition("-")
    assert f"{local}@{real_domain}" == vector["real_address"]
    assert len(tag) == SIMPLE_V1.length
    assert tag.startswith("2")


@pytest.mark.parametrize("vector", VECTORS["aliases"], ids=_ids(VECTORS["aliases"], "alias"))
def test_tracker_verifies_alias_vector(vector: dict[str, Any]) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=SIGNING_KEYS,
        default_policy=Policy(domain=vector["alias_domain"]),
        clock=FrozenClock(datetime.fromisoformat(VECTORS["tracker"]["now"])),
    )
    verified = tracker.verify(vector["alias"].upper())
    assert verified.address == vector["alias"]
    assert verified.strategy == vector["strategy"]
    assert verified.token.id == bytes.fromhex(vector["id"])
    assert verified.token.expires_at == datetime.fromisoformat(vector["expires_at"])


@pytest.mark.parametrize("name", ["complex", "simple"])
def test_strategy_make_binds_what_the_specification_says(name: str) -> None:
    """A fresh alias (random id) re-encodes, with its own id, to the same text.

    The binding is not carried in the alias, so only this pins it: the alias
    domain for complex, ``local@real-domain NUL alias-domain`` for simple.
    """
    codec = AliasCodec(SIGNING_KEYS)
    domain = VECTORS["tracker"]["alias_domain"]
    expires = datetime.fromisoformat(VECTORS["aliases"][0]["expires_at"])
    real = normalize_address("Maria.Silva@Example.COM.br")
    alias = _strategy(name, codec).make(real, domain=domain, expires_at=expires)
    local, _, alias_domain = alias.rpartition("@")
    if name == "complex":
        fmt, text, bind = COMPLEX_V1, local, domain.encode("ascii")
    else:
        real_domain, _, text = alias_domain.removesuffix("." + domain).rpartition("-")
        assert (local, real_domain) == ("maria.silva", "example.com.br")
        fmt, bind = SIMPLE_V1, f"{local}@{real_domain}\x00{domain}".encode("ascii")
    token = codec.decode(fmt, text, bind=bind)
    assert codec.encode(fmt, expires, bind=bind, token_id=token.id) == text


# -- blind indexes (ct_alias.blind_index) ----------------------------------------------


INDEXES = VECTORS["blind_index"]


@pytest.mark.parametrize("kind", ["keyed", "public"])
def test_alias_keys_match_vectors(kind: str) -> None:
    spec = INDEXES[kind]
    index = BlindIndex(spec["index_key"])
    assert index.keyed is (spec["index_key"] is not None)
    for case in spec["alias_keys"]:
        assert index.alias_key(case["alias"]) == case["key"], case["alias"]


@pytest.mark.parametrize("kind", ["keyed", "public"])
def test_slot_keys_match_vectors(kind: str) -> None:
    spec = INDEXES[kind]
    index = BlindIndex(spec["index_key"])
    for case in spec["slot_keys"]:
        assert index.slot_key(*case["parts"]) == case["key"], case["parts"]


@pytest.mark.parametrize("kind", ["keyed", "public"])
def test_message_keys_match_vectors(kind: str) -> None:
    """The relay's stand-in Message-ID is ``<message key>@<alias domain>``."""
    spec = INDEXES[kind]
    index = BlindIndex(spec["index_key"])
    for case in spec["message_keys"]:
        assert index.message_key(*case["parts"]) == case["key"], case["parts"]


def test_bytes_index_key_gives_the_same_vectors() -> None:
    spec = INDEXES["keyed"]
    index = BlindIndex(spec["index_key"].encode("utf-8"))
    assert [index.alias_key(c["alias"]) for c in spec["alias_keys"]] == [
        c["key"] for c in spec["alias_keys"]
    ]


def test_blind_index_follows_the_specification() -> None:
    """BLAKE2b-128 keyed with SHA-256(prefix ‖ NUL ‖ secret), personalised per use."""
    for spec in INDEXES.values():
        secret = (spec["index_key"] or "ct_alias public blind index key").encode("utf-8")
        derived = hashlib.sha256(b"ct_alias.blind_index.v1\x00" + secret).digest()
        for case in spec["alias_keys"]:
            expected = hashlib.blake2b(
                case["alias"].encode("utf-8"), key=derived, digest_size=16, person=b"ct_alias.alias"
            ).hexdigest()
            assert case["key"] == expected
        for case in spec["slot_keys"]:
            expected = hashlib.blake2b(
                "\x00".join(case["parts"]).encode("utf-8"),
                key=derived,
                digest_size=16,
                person=b"ct_alias.slot",
            ).hexdigest()
            assert case["key"] == expected
        for case in spec["message_keys"]:
            expected = hashlib.blake2b(
                "\x00".join(case["parts"]).encode("utf-8"),
                key=derived,
                digest_size=16,
                person=b"ct_alias.msgid",
            ).hexdigest()
            assert case["key"] == expected


def test_vectors_keep_the_parts_of_a_slot_apart() -> None:
    keys = {tuple(c["parts"]): c["key"] for c in INDEXES["keyed"]["slot_keys"]}
    joined = ("ab", "c", "customer", "x@example.com")
    moved = ("a", "bc", "customer", "x@example.com")
    assert keys[joined] != keys[moved]


# -- sealed addresses (ct_alias.crypto) ------------------------------------------------


SEALED = VECTORS["sealed"]


def test_key_ids_match_vectors() -> None:
    cipher = AddressCipher(SEALED["address_keys"])
    assert cipher.key_ids == SEALED["key_ids"]
    assert cipher.newest == SEALED["key_ids"][-1]
    assert [AddressCipher([k]).newest for k in SEALED["address_keys"]] == SEALED["key_ids"]


def test_key_ids_follow_the_specification() -> None:
    for key, key_id in zip(SEALED["address_keys"], SEALED["key_ids"], strict=True):
        derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + key.encode("utf-8")).digest()
        assert hashlib.sha256(b"ct_alias.address-key-id\x00" + derived).hexdigest()[:8] == key_id


@pytest.mark.parametrize("vector", SEALED["values"], ids=lambda v: v["sealed"][:20])
def test_sealed_vector_opens(vector: dict[str, Any]) -> None:
    cipher = AddressCipher(SEALED["address_keys"])
    stored = vector["sealed"]
    assert is_sealed(stored)
    assert stored.startswith(f"{PREFIX}{SEALED['key_ids'][vector['address_key']]}.")
    assert cipher.open(stored, context=vector["context"]) == vector["plaintext"]
    assert cipher.needs_reseal(stored)  # format 1: re-sealed in format 2 by a rotation
    with pytest.raises(CorruptRecord):
        cipher.open(stored, context=vector["context"] + "x")


@pytest.mark.parametrize("vector", SEALED["values"], ids=lambda v: v["sealed"][:20])
def test_sealed_vector_follows_the_specification(vector: dict[str, Any]) -> None:
    """``ct1.<key id>.<base64url(nonce ‖ AES-256-GCM(ciphertext ‖ tag))>``, unpadded."""
    key_id, _, payload = vector["sealed"].removeprefix("ct1.").partition(".")
    assert "=" not in payload
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    key = SEALED["address_keys"][vector["address_key"]].encode("utf-8")
    derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + key).digest()
    nonce = raw[:12]
    again = AESGCM(derived).encrypt(
        nonce, vector["plaintext"].encode("utf-8"), vector["context"].encode("utf-8")
    )
    assert raw == nonce + again
    assert key_id == SEALED["key_ids"][vector["address_key"]]


SEALED_V2 = VECTORS["sealed_v2"]


@pytest.mark.parametrize("vector", SEALED_V2, ids=lambda v: v["sealed"][:20])
def test_sealed_v2_vector_opens_in_its_place_only(vector: dict[str, Any]) -> None:
    cipher = AddressCipher(SEALED["address_keys"])
    stored = vector["sealed"]
    assert is_sealed(stored)
    assert stored.startswith(f"{PREFIX_V2}{SEALED['key_ids'][vector['address_key']]}.")
    assert record_context(**vector["parts"]) == vector["context"]
    assert cipher.open(stored, context=vector["context"]) == vector["plaintext"]
    assert cipher.needs_reseal(stored) is (vector["address_key"] != len(SEALED["key_ids"]) - 1)
    for part in vector["parts"]:
        moved = record_context(**{**vector["parts"], part: vector["parts"][part] + "x"})
        with pytest.raises(CorruptRecord):
            cipher.open(stored, context=moved)


@pytest.mark.parametrize("vector", SEALED_V2, ids=lambda v: v["sealed"][:20])
def test_sealed_v2_vector_follows_the_specification(vector: dict[str, Any]) -> None:
    """``ct2.<key id>.<base64url(nonce ‖ AES-256-GCM)>``; AD: the JSON array of the place."""
    parts = vector["parts"]
    context = json.dumps(
        [
            "ct_alias.record.v2",
            parts["store"],
            parts["conversation"],
            parts["role"],
            parts["key"],
            parts["field"],
            parts["address"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert context == vector["context"]
    key_id, _, payload = vector["sealed"].removeprefix("ct2.").partition(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    key = SEALED["address_keys"][vector["address_key"]].encode("utf-8")
    derived = hashlib.sha256(b"ct_alias.address-key.v1\x00" + key).digest()
    again = AESGCM(derived).encrypt(raw[:12], vector["plaintext"].encode(), context.encode())
    assert raw == raw[:12] + again
    assert key_id == SEALED["key_ids"][vector["address_key"]]


def test_cleartext_names_the_missing_key_of_a_sealed_vector() -> None:
    vector = SEALED["values"][0]
    with pytest.raises(UnknownAddressKey) as caught:
        Cleartext().open(vector["sealed"], context=vector["context"])
    assert caught.value.key_id == SEALED["key_ids"][vector["address_key"]]


def test_key_missing_from_the_list_is_named() -> None:
    newest_only = AddressCipher(SEALED["address_keys"][1:])
    vector = next(v for v in SEALED["values"] if v["address_key"] == 0)
    with pytest.raises(UnknownAddressKey) as caught:
        newest_only.open(vector["sealed"], context=vector["context"])
    assert caught.value.key_id == SEALED["key_ids"][0]


# -- a database written by this release (ct_alias.Tracker) -----------------------------


TRACKED = VECTORS["tracker"]


def _tracker_over_vectors() -> tuple[Tracker, MemoryStorage]:
    store = MemoryStorage()
    now = datetime.fromisoformat(TRACKED["now"])
    for vector in TRACKED["records"]:
        stored = vector["stored"]
        record = Alias(
            address=stored["address"],
            real_address=stored["real_address"],
            conversation=stored["conversation"],
            store=stored["store"],
            role=Role(stored["role"]),
            strategy=stored["strategy"],
            created_at=datetime.fromisoformat(stored["created_at"]),
            expires_at=datetime.fromisoformat(stored["expires_at"]),
            status=AliasStatus(stored["status"]),
            key=stored["key"],
            slot=stored["slot"],
        )
        _, created = store.get_or_create(record, now=now)
        assert created
    tracker = Tracker(
        storage=store,
        keys=SIGNING_KEYS,
        default_policy=Policy(domain=TRACKED["alias_domain"]),
        clock=FrozenClock(now),
        index_key=TRACKED["index_key"],
        address_keys=SEALED["address_keys"],
    )
    tracker.set_policy("simple-shop", Policy(domain=TRACKED["alias_domain"], strategy="simple"))
    return tracker, store


@pytest.mark.parametrize("vector", TRACKED["records"], ids=_ids(TRACKED["records"], "alias"))
def test_stored_record_vector_unmasks(vector: dict[str, Any]) -> None:
    tracker, _ = _tracker_over_vectors()
    alias = tracker.unmask(vector["alias"].upper())
    assert alias.address == vector["alias"]
    assert alias.real_address == vector["real_address"]
    assert alias.key == vector["stored"]["key"]
    assert tracker.verify(vector["alias"]).strategy == vector["stored"]["strategy"]


@pytest.mark.parametrize("vector", TRACKED["records"], ids=_ids(TRACKED["records"], "alias"))
def test_stored_record_vector_is_found_again_by_mask(vector: dict[str, Any]) -> None:
    """The slot key (blind index of store, conversation, role, address) is pinned too."""
    tracker, store = _tracker_over_vectors()
    alias = tracker.mask(**vector["mask"])
    assert alias.address == vector["alias"]  # a new alias would have a random token
    assert alias.key == vector["stored"]["key"]
    assert store.get(alias.key) is not None


@pytest.mark.parametrize("vector", TRACKED["records"], ids=_ids(TRACKED["records"], "alias"))
def test_stored_record_vector_keys_follow_the_index(vector: dict[str, Any]) -> None:
    index = BlindIndex(TRACKED["index_key"])
    mask = vector["mask"]
    real_key = normalize_address(mask["address"]).key
    assert index.alias_key(vector["alias"]) == vector["stored"]["key"]
    assert (
        index.slot_key(mask["store"], mask["conversation"], mask["role"], real_key)
        == vector["stored"]["slot"]
    )
    cipher = AddressCipher(SEALED["address_keys"])
    stored = vector["stored"]
    assert cipher.open(stored["address"], context=stored["key"] + ":alias") == vector["alias"]
    assert (
        cipher.open(stored["real_address"], context=stored["key"] + ":real")
        == (vector["real_address"])
    )
