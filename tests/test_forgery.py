"""Forgery: no altered, transplanted or re-signed alias is ever accepted, nor costs a lookup.

Every single-character substitution, deletion and insertion of real aliases
of both strategies (for hypothesis-generated addresses) must be refused as
malformed or forged from the alias text alone; every case change must still
work. Aliases re-signed with a retired key, signed with a stranger's key, or
with their token moved to another address or domain are forged. MACs are
compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ct_alias.codec
from ct_alias import (
    AliasCodec,
    CtAliasError,
    ForgedAlias,
    FrozenClock,
    InvalidAddress,
    MalformedAlias,
    Tracker,
    UnknownAlias,
    normalize_address,
)
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1
from ct_alias.testing import CountingStorage

from .hostile import (
    DOMAIN,
    OTHER_DOMAIN,
    OTHER_STORE,
    SIMPLE_STORE,
    START,
    make_tracker,
    rfc5321_problems,
    single_character_variants,
)

#: What a person or an MTA might type into an alias: our alphabet, the rest of the
#: lower-case letters, and the punctuation of addresses.
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz-._+@"
STORES = ("default", SIMPLE_STORE, OTHER_STORE)
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_local = st.from_regex(r"[a-z0-9][a-z0-9_+-]{0,12}(\.[a-z0-9_+-]{1,8}){0,2}", fullmatch=True)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_tld = st.sampled_from(["com", "br", "net", "org", "de", "co", "xn--p1ai", "museum"])
_domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_label, min_size=1, max_size=3), _tld
)
ADDRESSES = (
    st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain)
    | st.emails()
    | st.sampled_from(
        [
            "Maria.Silva@Example.com.br",
            "a-b@c-d.e-f.com",
            "x@xn--mnchen-3ya.de",
            "ana@m\u00fcnchen.de",
            "jo\u00e3o@exemplo.com.br",
            '"john doe"@example.com',
            "1234567890abcdefghij@ct-1.example.com",
        ]
    )
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def counting_tracker(clock: FrozenClock, keys: list[str] | None = None) -> Tracker:
    return make_tracker(
        CountingStorage(),
        clock,
        keys
        or [
            "wSRVfFCOJLmGbG22nqZ4-QvxweG1ZayayP_HITqe0_4",
            "daCLCf-Cyc-RAMMs9X_ROSjdvXfUs5x8tSPicKWZE9w",
        ],
    )


def counted(tracker: Tracker) -> CountingStorage:
    store = tracker.storage
    assert isinstance(store, CountingStorage)
    return store


def assert_refused_without_storage(tracker: Tracker, text: str) -> None:
    store = counted(tracker)
    before = store.total
    with pytest.raises(CtAliasError) as info:
        tracker.unmask(text)
    assert type(info.value) in (ForgedAlias, MalformedAlias), (text, info.value)
    assert not isinstance(info.value, UnknownAlias)
    assert store.total == before, f"{text!r} cost a storage call"


# -- every single-character change ---------------------------------------------------


@SETTINGS
@given(address=ADDRESSES)
def test_every_single_character_change_is_refused_and_every_case_change_works(
    address: str,
) -> None:
    try:
        normalize_address(address)
    except InvalidAddress:
        assume(False)
    clock = FrozenClock(START)
    tracker = counting_tracker(clock)
    store = counted(tracker)
    for store_name in STORES:
        alias = tracker.mask(address, conversation="o1", store=store_name)
        assert not rfc5321_problems(alias.address), rfc5321_problems(alias.address)
        real = alias.real_address
        variants = single_character_variants(alias.address, ALPHABET)
        store.calls.clear()
        for variant in variants:
            assert variant.lower() != alias.address  # the alphabet has no upper case
            with pytest.raises(CtAliasError) as info:
                tracker.unmask(variant)
            assert type(info.value) in (ForgedAlias, MalformedAlias), (variant, info.value)
        assert store.total == 0, f"forged variants of {alias.address} cost storage calls"
        # Case changes: each character, the whole alias, and a mixed spelling.
        cases = {
            alias.address[:i] + c.upper() + alias.address[i + 1 :]
            for i, c in enumerate(alias.address)
        }
        cases |= {
            alias.address.upper(),
            "".join(c.upper() if i % 2 else c for i, c in enumerate(alias.address)),
        }
        cases.discard(alias.address)
        for variant in cases:
            got = tracker.unmask(variant)
            assert got.address == alias.address
            assert got.real_address == real
        assert store.calls["get"] == len(cases)


@pytest.mark.parametrize("store_name", STORES)
def test_look_alike_characters_are_refused(clock: FrozenClock, store_name: str) -> None:
    """Characters people confuse (and Unicode look-alikes) never reach storage."""
    tracker = counting_tracker(clock)
    alias = tracker.mask("maria@example.com.br", conversation="o1", store=store_name).address
    confusions = {"0": "o", "o": "0", "1": "l", "l": "1", "i": "1", "5": "s", "s": "5", "b": "8"}
    swaps = {
        "a": "\u0430",  # Cyrillic a
        "e": "\u0435",  # Cyrillic ie
        "o": "\u03bf",  # Greek omicron
        "1": "\uff11",  # fullwidth digit one
        "-": "\u2010",  # hyphen
        ".": "\u3002",  # ideographic full stop
        "@": "\uff20",  # fullwidth commercial at
    }
    variants = set()
    for i, c in enumerate(alias):
        for table in (confusions, swaps):
            if c in table:
                variants.add(alias[:i] + table[c] + alias[i + 1 :])
    variants |= {alias + ".", alias + " ", " " + alias, alias + "\x00", alias.replace("@", "@@")}
    variants |= {alias[: len(alias) // 2] + "\u200b" + alias[len(alias) // 2 :]}
    assert len(variants) > 10
    for variant in variants:
        assert_refused_without_storage(tracker, variant)


# -- keys: retired, stranger's, rotated -------------------------------------------------


def _resigned(codec: AliasCodec, tracker: Tracker, alias: str) -> str:
    """``alias`` with its token (or tag) re-signed by ``codec``: same id, expiry and binding."""
    verified = tracker.verify(alias)
    token = verified.token
    local, _, domain = alias.rpartition("@")
    if verified.strategy == "complex":
        text = codec.encode(COMPLEX_V1, token.expires_at, bind=domain.encode(), token_id=token.id)
        return f"{text}@{domain}"
    alias_domain = max((d for d in tracker.domains if domain.endswith("." + d)), key=len)
    real_domain = domain[: -len(alias_domain) - 1].rpartition("-")[0]
    bind = f"{local}@{real_domain}\x00{alias_domain}".encode()
    text = codec.encode(SIMPLE_V1, token.expires_at, bind=bind, token_id=token.id)
    return f"{local}@{real_domain}-{text}.{alias_domain}"


@pytest.mark.parametrize("store_name", STORES)
def test_resigning_with_a_retired_or_foreign_key_is_forged(
    clock: FrozenClock, store_name: str
) -> None:
    old = counting_tracker(clock, ["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"])
    alias = old.mask("maria@example.com.br", conversation="o1", store=store_name).address
    # Re-signing with the very key that signed it reproduces the alias exactly.
    assert (
        _resigned(AliasCodec(["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"]), old, alias) == alias
    )
    rotated = make_tracker(
        old.storage,
        clock,
        [
            "0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I",
            "jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU",
        ],
    )
    assert rotated.unmask(alias).real_address == "maria@example.com.br"
    fresh = rotated.mask("maria@example.com.br", conversation="o2", store=store_name).address
    retired = make_tracker(old.storage, clock, ["jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU"])
    counted(retired).calls.clear()
    assert retired.unmask(fresh).real_address == "maria@example.com.br"
    assert counted(retired).calls["get"] == 1
    counted(retired).calls.clear()
    with pytest.raises(ForgedAlias):
        retired.unmask(alias)
    for codec in (
        AliasCodec(["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"]),
        AliasCodec(["_VvE6m2Dq7rGyXC-J6ATXJXgVlNeVNR1Fxu7cgph-cU"]),
        AliasCodec(b"jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU "),
    ):
        forged = _resigned(codec, rotated, alias)
        assert forged != alias or codec.key_count == 1
        assert_refused_without_storage(retired, forged)
    # A salt is part of the key: the same secret with another salt is another key.
    salted = _resigned(
        AliasCodec(["jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU"], salt=b"another.use"),
        rotated,
        alias,
    )
    assert_refused_without_storage(retired, salted)
    assert counted(retired).total == 0


def test_an_expired_alias_resigned_with_a_later_expiry_is_forged(clock: FrozenClock) -> None:
    tracker = counting_tracker(clock)
    alias = tracker.mask("maria@example.com.br", conversation="o1").address
    token = tracker.verify(alias).token
    local, _, domain = alias.partition("@")
    attacker = AliasCodec(["g4hkpf3QBfaudbNbUP0B8TNvZM_TZWgW1pHGKAIyZiM"])
    later = attacker.encode(
        COMPLEX_V1, token.expires_at + timedelta(days=365), bind=domain.encode(), token_id=token.id
    )
    # Same id, later expiry: only the expiry bytes and the MAC differ.
    assert later[:17] == local[:17]
    assert later != local
    clock.advance(timedelta(days=61))
    assert_refused_without_storage(tracker, f"{later}@{domain}")


def test_tokens_and_tags_cannot_be_transplanted(clock: FrozenClock) -> None:
    tracker = counting_tracker(clock)
    complex_alias = tracker.mask("maria@example.com.br", conversation="o1").address
    simple = tracker.mask("maria@example.com.br", conversation="o1", store=SIMPLE_STORE).address
    other = tracker.mask("maria@example.com.br", conversation="o1", store=OTHER_STORE).address
    token = complex_alias.partition("@")[0]
    local, _, domain = simple.partition("@")
    real_domain, _, rest = domain.rpartition("-")
    tag = rest.partition(".")[0]
    transplants = [
        f"{token}@{OTHER_DOMAIN}",  # the complex token is bound to its alias domain
        f"eve@{real_domain}-{tag}.{DOMAIN}",  # no open relay: the tag is bound to the address
        f"maria@evil.example-{tag}.{DOMAIN}",
        f"maria@{real_domain}-{tag}.{OTHER_DOMAIN}",  # ...and to the alias domain
        f"maria.@{real_domain}-{tag}.{DOMAIN}",
        f"{local}@{real_domain}.{real_domain}-{tag}.{DOMAIN}",
        f"{local}@{real_domain}-{tag}.{DOMAIN}".replace(tag, tag[:-1] + "0"),
        other.replace(OTHER_DOMAIN, DOMAIN),
        f"{tag}@{DOMAIN}",
        f"{token}@{real_domain}-{tag}.{DOMAIN}",
        f"{local}@{real_domain}-{token[:24]}.{DOMAIN}",
    ]
    for transplant in transplants:
        if transplant.lower() in (simple, complex_alias, other):
            continue
        assert_refused_without_storage(tracker, transplant)


# -- constant-time comparison ------------------------------------------------------------


def test_macs_are_compared_with_compare_digest(
    clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker(
        CountingStorage(),
        clock,
        [
            "0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I",
            "jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU",
        ],
    )
    aliases = [
        tracker.mask("maria@example.com.br", conversation="o1", store=name).address
        for name in STORES
    ]
    calls: list[tuple[Any, Any]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(ct_alias.codec, "hmac", SimpleNamespace(compare_digest=spy, new=hmac.new))
    if hasattr(ct_alias.codec, "compare_digest"):  # in case it is ever imported by name
        monkeypatch.setattr(ct_alias.codec, "compare_digest", spy)
    for alias in aliases:
        calls.clear()
        assert tracker.verify(alias).address == alias
        assert calls, "decode() did not compare the MAC with hmac.compare_digest"
        assert all(isinstance(a, bytes) and len(a) == len(b) for a, b in calls)
        calls.clear()
        forged = alias[:2] + ("0" if alias[2] != "0" else "1") + alias[3:]
        with pytest.raises((ForgedAlias, MalformedAlias)) as info:
            tracker.verify(forged)
        # A well-formed forgery is compared against every key; a malformed one against none.
        assert len(calls) == (2 if isinstance(info.value, ForgedAlias) else 0), forged
