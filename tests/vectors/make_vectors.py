"""Write ``formats.json``: known-answer vectors of every persisted or transmitted format.

Run once, from the repository root, with the release whose formats are pinned::

    python tests/vectors/make_vectors.py > tests/vectors/formats.json

The JSON it wrote is the authority, not this script: ``tests/test_vectors.py``
compares the code against the committed file and never regenerates it. If a
vector test fails, the code changed a format that aliases in circulation and
databases already depend on; fix the code, do not re-run this script. (Sealed
values use a random nonce, so re-running it changes them anyway.)

A new format version gets *new* vectors added beside the old ones, which stay.
The keys below were made with ``secrets.token_urlsafe(32)`` (what
``ct-alias keys generate`` prints) and are public test keys: never use them.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from ct_alias import Alias, AliasCodec, FrozenClock, MemoryStorage, Policy, Tracker
from ct_alias.blind_index import BlindIndex
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1, TokenFormat
from ct_alias.crypto import AddressCipher, record_context

SIGNING_KEYS = [
    "vBtwSxoVVB5A928j8qqagnC5JLrtRBEQmcJMqGVXqIA",  # oldest: still verifies
    "nEyiNSK8-yRgx4YIb6cuSZ-49L1KnGDhpc9hhUZOQRc",  # newest: signs
]
INDEX_KEY = "J84pfiJIGYQoGeZ6nY-UT8NsCUR-m9P53BQkcgQ0qkE"
ADDRESS_KEYS = [
    "2Pspm5RxJOteRGu61I8PEcoaartHRimk1zove5cHb-E",  # oldest: still opens
    "F0_trlmH5WNWoSxQ0KlTXaBu33KeMiy39b2YIAQE21o",  # newest: seals
]
NOW = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
EXPIRES = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DOMAIN = "ct.example.com"
#: A format of the kind a custom strategy declares (numbers 10-31 are theirs).
CUSTOM_V20 = TokenFormat(version=20, id_size=5, mac_size=5, name="custom-v20")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _simple_bind(local: str, real_domain: str, alias_domain: str) -> bytes:
    return f"{local}@{real_domain}\x00{alias_domain}".encode("ascii")


def tokens() -> list[dict[str, Any]]:
    """Token texts for each format, each signing key, and several ids and bindings."""
    cases: list[tuple[TokenFormat, bytes, bytes, datetime]] = [
        (COMPLEX_V1, bytes(range(10)), DOMAIN.encode(), EXPIRES),
        (COMPLEX_V1, bytes.fromhex("ff" * 10), DOMAIN.encode(), datetime(2106, 2, 7, tzinfo=UTC)),
        (COMPLEX_V1, bytes.fromhex("0f1e2d3c4b5a69788796"), b"", EXPIRES),
        (
            SIMPLE_V1,
            bytes(range(4)),
            _simple_bind("maria.silva", "example.com.br", DOMAIN),
            EXPIRES,
        ),
        (SIMPLE_V1, bytes.fromhex("deadbeef"), b"", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        (CUSTOM_V20, bytes.fromhex("0102030405"), DOMAIN.encode(), EXPIRES),
    ]
    out = []
    for signer in (0, 1):
        codec = AliasCodec(SIGNING_KEYS[: signer + 1])
        for fmt, token_id, bind, expires in cases:
            text = codec.encode(fmt, expires, bind=bind, token_id=token_id)
            out.append(
                {
                    "format": {
                        "name": fmt.name,
                        "version": fmt.version,
                        "id_size": fmt.id_size,
                        "mac_size": fmt.mac_size,
                    },
                    "signing_key": signer,
                    "id": token_id.hex(),
                    "bind": bind.decode("ascii"),
                    "expires_at": _iso(expires),
                    "text": text,
                    "bytes": int(text, 32).to_bytes(fmt.size, "big").hex(),
                }
            )
    return out


def aliases() -> list[dict[str, Any]]:
    """Alias addresses of the two built-in strategies, with fixed ids."""
    codec = AliasCodec(SIGNING_KEYS)
    complex_token = codec.encode(COMPLEX_V1, EXPIRES, bind=DOMAIN.encode(), token_id=bytes(10))
    out: list[dict[str, Any]] = [
        {
            "strategy": "complex",
            "real_address": None,
            "alias_domain": DOMAIN,
            "id": "00" * 10,
            "expires_at": _iso(EXPIRES),
            "alias": f"{complex_token}@{DOMAIN}",
        }
    ]
    for local, real_domain, token_id in [
        ("maria.silva", "example.com.br", "01020304"),
        ("joao-2", "mail-1.example-shop.com", "a0b1c2d3"),
    ]:
        tag = codec.encode(
            SIMPLE_V1,
            EXPIRES,
            bind=_simple_bind(local, real_domain, DOMAIN),
            token_id=bytes.fromhex(token_id),
        )
        out.append(
            {
                "strategy": "simple",
                "real_address": f"{local}@{real_domain}",
                "alias_domain": DOMAIN,
                "id": token_id,
                "expires_at": _iso(EXPIRES),
                "alias": f"{local}@{real_domain}-{tag}.{DOMAIN}",
            }
        )
    return out


def blind_index(alias_list: list[dict[str, Any]]) -> dict[str, Any]:
    """Alias keys and slot keys, with the index key and with the public default."""
    slots = [
        ["default", "order-1", "customer", "maria.silva@example.com.br"],
        ["shop-7", "207700027841", "store", "vendas@loja.example.com"],
        ["ab", "c", "customer", "x@example.com"],
        ["a", "bc", "customer", "x@example.com"],
        ["", "", "", ""],
        ["loja-ç", "pedido-ü", "follow_up", "jose@example.com"],
    ]
    addresses = [a["alias"] for a in alias_list] + ["", "ünïcode@example.com"]
    out: dict[str, Any] = {}
    for name, key in (("keyed", INDEX_KEY), ("public", None)):
        index = BlindIndex(key)
        out[name] = {
            "index_key": key,
            "alias_keys": [{"alias": a, "key": index.alias_key(a)} for a in addresses],
            "slot_keys": [{"parts": s, "key": index.slot_key(*s)} for s in slots],
            "message_keys": [{"parts": m, "key": index.message_key(*m)} for m in MESSAGE_IDS],
        }
    return out


#: (conversation, Message-ID) pairs: the relay's stand-in Message-ID is
#: ``<message_key>@<alias domain>``, and replies are mapped back through it.
MESSAGE_IDS = [
    ["order-42", "<t1@transportadora.example.net>"],
    ["order-42", "t1@transportadora.example.net"],
    ["ab", "c@example.com"],
    ["a", "bc@example.com"],
    ["pedido-ü", "<ünïcode@exemplo.com.br>"],
    ["", ""],
]


def sealed() -> dict[str, Any]:
    """Key ids, and values sealed by this release with each address key."""
    both = AddressCipher(ADDRESS_KEYS)
    values = []
    for index, key in enumerate(ADDRESS_KEYS):
        cipher = AddressCipher([key])
        for plaintext, context in [
            ("maria.silva@example.com.br", "0123456789abcdef0123456789abcdef:real"),
            ("joão@exemplo.com.br", "0123456789abcdef0123456789abcdef:alias"),
            ("", "ctx"),
        ]:
            values.append(
                {
                    "address_key": index,
                    "context": context,
                    "plaintext": plaintext,
                    "sealed": cipher.seal(plaintext, context=context),
                }
            )
    return {"address_keys": ADDRESS_KEYS, "key_ids": both.key_ids, "values": values}


def sealed_v2() -> list[dict[str, Any]]:
    """Format 2 (``ct2.``) values: bound to the record's place by ``record_context``.

    Added beside format 1's vectors when format 2 was introduced (issue #15).
    """
    places = [
        ("shop-a", "1001", "customer", "0123456789abcdef0123456789abcdef", "alias", ""),
        (
            "shop-a",
            "1001",
            "customer",
            "0123456789abcdef0123456789abcdef",
            "real",
            "12at3fdm3ntgnpvhs9kqakcg8ul1eknv6kb6ob5q@ct.example.com",
        ),
        ("loja-ç", "pedido/ü 7", "store", "fedcba9876543210fedcba9876543210", "real", "x@y"),
    ]
    values = []
    for index, key in enumerate(ADDRESS_KEYS):
        cipher = AddressCipher([key])
        for (store, conversation, role, record_key, field, address), plaintext in zip(
            places,
            ["1abc@ct.example.com", "maria.silva@example.com.br", "joão@exemplo.com.br"],
            strict=True,
        ):
            parts = {
                "store": store,
                "conversation": conversation,
                "role": role,
                "key": record_key,
                "field": field,
                "address": address,
            }
            context = record_context(**parts)
            values.append(
                {
                    "address_key": index,
                    "parts": parts,
                    "context": context,
                    "plaintext": plaintext,
                    "sealed": cipher.seal(plaintext, context=context),
                }
            )
    return values


def records() -> list[dict[str, Any]]:
    """What a tracker with every key set stores for one complex and one simple alias."""
    store = MemoryStorage()
    tracker = Tracker(
        storage=store,
        keys=SIGNING_KEYS,
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(NOW),
        index_key=INDEX_KEY,
        address_keys=ADDRESS_KEYS,
    )
    tracker.set_policy("simple-shop", Policy(domain=DOMAIN, strategy="simple"))
    out = []
    for real, shop, role in [
        ("Maria.Silva@Example.com.br", "default", "customer"),
        ("vendas@loja.example.com", "simple-shop", "store"),
    ]:
        alias = tracker.mask(real, conversation="order-42", store=shop, role=role)
        record = store.get(alias.key)
        assert isinstance(record, Alias)
        out.append(
            {
                "alias": alias.address,
                "real_address": alias.real_address,
                "mask": {"address": real, "conversation": "order-42", "store": shop, "role": role},
                "stored": {
                    "address": record.address,
                    "real_address": record.real_address,
                    "conversation": record.conversation,
                    "store": record.store,
                    "role": record.role.value,
                    "strategy": record.strategy,
                    "created_at": _iso(record.created_at),
                    "expires_at": _iso(record.expires_at),
                    "status": record.status.value,
                    "key": record.key,
                    "slot": record.slot,
                },
            }
        )
    return out


def main() -> None:
    """Print the vectors as JSON."""
    alias_list = aliases()
    vectors = {
        "about": (
            "Known-answer vectors of ct_alias's persisted and transmitted formats. "
            "Made once by tests/vectors/make_vectors.py; tests/test_vectors.py checks the code "
            "against this file. Public test keys: never use them."
        ),
        "signing_keys": SIGNING_KEYS,
        "codec_salt": "ct_alias.codec",
        "tokens": tokens(),
        "aliases": alias_list,
        "blind_index": blind_index(alias_list),
        "sealed": sealed(),
        "sealed_v2": sealed_v2(),
        "tracker": {
            "index_key": INDEX_KEY,
            "now": _iso(NOW),
            "alias_domain": DOMAIN,
            "records": records(),
        },
    }
    json.dump(vectors, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
