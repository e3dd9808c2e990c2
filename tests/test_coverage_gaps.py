"""Branches the rest of the suite leaves unexercised: refusals, reprs, failure paths."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve

from ct_alias import (
    AliasStatus,
    ConfigurationError,
    ExpiredAlias,
    ExpiryReason,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    Policy,
    Relay,
    RevokedAlias,
    Role,
    Tracker,
    UnknownAddressKey,
    UnknownAlias,
    normalize_address,
    register_strategy,
)
from ct_alias.blind_index import BlindIndex
from ct_alias.crypto import PREFIX, Cleartext
from ct_alias.strategies import ComplexStrategy, SimpleStrategy
from ct_alias.testing import FailingStorage
from ct_alias.timeline import EntryKind, TimelineEntry

from .hostile import DOMAIN, START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


# -- values ------------------------------------------------------------------------------


def test_status_at_and_check_usable_cover_every_state(tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1")
    later = alias.created_at + timedelta(days=1)
    assert alias.status_at(later) is AliasStatus.ACTIVE
    assert alias.status_at(alias.expires_at) is AliasStatus.EXPIRED
    with pytest.raises(ExpiredAlias) as info:
        alias.check_usable(alias.expires_at)
    assert (info.value.reason, info.value.expired_at) == (ExpiryReason.TTL, alias.expires_at)
    ended = evolve(alias, status=AliasStatus.ENDED, ends_at=later)
    assert ended.status_at(later - timedelta(seconds=1)) is AliasStatus.ENDED
    assert ended.status_at(later) is AliasStatus.ENDED
    with pytest.raises(ExpiredAlias) as info:
        ended.check_usable(later)
    assert info.value.reason is ExpiryReason.ENDED
    revoked = evolve(alias, status=AliasStatus.REVOKED, revoked_at=later)
    assert revoked.status_at(later) is AliasStatus.REVOKED
    assert not revoked.usable_at(later)
    with pytest.raises(RevokedAlias) as revoked_info:
        revoked.check_usable(later)
    assert revoked_info.value.expired_at == later
    # a revoked record without a time reports its expiry
    with pytest.raises(RevokedAlias) as revoked_info:
        evolve(revoked, revoked_at=None).check_usable(later)
    assert revoked_info.value.expired_at == alias.expires_at


def test_reprs_hide_secrets_and_addresses() -> None:
    real = normalize_address("Maria.Silva@Example.com")
    assert "maria" not in repr(real).lower()
    assert "example.com" in repr(real)
    assert repr(BlindIndex()) == "<BlindIndex public>"
    assert repr(BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k")) == "<BlindIndex keyed>"
    assert "secret" not in repr(BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k"))
    assert BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k").keyed
    assert not BlindIndex().keyed
    with pytest.raises(ConfigurationError):
        BlindIndex("")
    from ct_alias import AliasCodec

    assert (
        repr(ComplexStrategy(AliasCodec("jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE")))
        == "ComplexStrategy()"
    )
    assert (
        repr(SimpleStrategy(AliasCodec("jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE")))
        == "SimpleStrategy()"
    )
    assert repr(Cleartext()) == "Cleartext()"


def test_cleartext_sealer() -> None:
    sealer = Cleartext()
    assert sealer.seal("maria@example.com", context="k:real") == "maria@example.com"
    assert sealer.open("maria@example.com", context="k:real") == "maria@example.com"
    assert not sealer.needs_reseal("anything")
    with pytest.raises(UnknownAddressKey) as info:
        sealer.open(f"{PREFIX}key1.payload", context="k:real")
    assert info.value.key_id == "key1"


def test_an_unstored_entry_has_no_cursor() -> None:
    entry = TimelineEntry("o1", EntryKind.EVENT, "invoiced", START, store="shop")
    with pytest.raises(ValueError, match="no cursor"):
        _ = entry.cursor


@pytest.mark.parametrize(
    "kwargs",
    [
        {"end_on": "invoiced"},
        {"end_on": 42},
        {"end_on": [""]},
        {"end_on": [1]},
        {"grace": timedelta(days=-1)},
        {"grace": 3},
        {"grace": timedelta(days=4000)},
        {"strategy": ""},
        {"strategy": 7},
        {"ttl": timedelta(0)},
        {"on_unrepresentable": "drop"},
        {"domain": "x" * 250 + ".com"},
    ],
)
def test_policy_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Policy(**{"domain": DOMAIN, **kwargs})


# -- tracker -----------------------------------------------------------------------------


def test_tracker_argument_refusals(tracker: Tracker, clock: FrozenClock) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1")
    with pytest.raises(InvalidArgument):
        tracker.unmask(alias.address, reason=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.unmask(alias.address, reason="line\nbreak")
    with pytest.raises(InvalidArgument):
        tracker.purge(older_than=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.reactivate("o1", for_=timedelta(0))
    with pytest.raises(InvalidArgument):
        tracker.end("o1", grace=timedelta(days=-1))
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", at=START.replace(tzinfo=None))
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", data={"x": float("nan")})
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", data=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.record_message("o1", "text", direction="inbound")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.record_message("o1", b"Subject: x\r\n\r\n", direction="sideways")
    with pytest.raises(InvalidArgument):
        tracker.timeline("o1", limit=0)
    with pytest.raises(InvalidArgument):
        tracker.timeline("o1", after="not-a-cursor")
    with pytest.raises(ConfigurationError):
        tracker.rotate_address_keys()
    assert not tracker.owns(None)
    assert not tracker.owns(42)
    assert tracker.owns(alias.address.upper())
    assert not tracker.owns("maria@example.com.br")


def test_record_message_takes_bytes_like_objects(tracker: Tracker) -> None:
    data = b"Subject: hi\r\nMessage-ID: <a@b.example>\r\n\r\nHello\r\n"
    first = tracker.record_message("o1", bytearray(data), direction="inbound")
    again = tracker.record_message("o1", memoryview(data), direction="inbound")
    assert first == again
    assert len(tracker.timeline("o1").messages) == 1


def test_lookup_of_a_signed_but_unknown_alias(tracker: Tracker, clock: FrozenClock) -> None:
    sibling = make_tracker(MemoryStorage(), clock)
    stranger = sibling.mask(CUSTOMER, conversation="o1").address
    with pytest.raises(UnknownAlias):
        tracker.lookup(stranger)
    alias = tracker.mask(CUSTOMER, conversation="o1")
    assert tracker.lookup(alias.address.upper()) == alias


def test_rotate_address_keys_refuses_a_bad_batch_size(clock: FrozenClock) -> None:
    pytest.importorskip("cryptography")
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
        address_keys="a-single-address-key-of-enough-length",
    )
    alias = tracker.mask(CUSTOMER, conversation="o1")
    assert tracker.unmask(alias.address).real_address == CUSTOMER
    for bad in (0, -1, "10", 1.5):
        with pytest.raises(InvalidArgument):
            tracker.rotate_address_keys(batch_size=bad)  # type: ignore[arg-type]


def test_a_strategy_that_makes_invalid_aliases_is_a_configuration_error(clock: FrozenClock) -> None:
    class Broken:
        name = "hostile-broken"

        def __init__(self, codec: object) -> None:
            del codec

        def make(self, real: object, *, domain: str, expires_at: object) -> str:
            del real, expires_at
            return "\u00e9" * 10 + "@" + domain

        def read(self, local: str, domain: str, *, alias_domain: str) -> None:
            del local, domain, alias_domain

    class Misnamed(Broken):
        name = "something-else"

    register_strategy("hostile-broken", Broken, replace=True)
    register_strategy("hostile-misnamed", Misnamed, replace=True)
    tracker = make_tracker(MemoryStorage(), clock, policies={})
    tracker.set_policy("broken", Policy(domain=DOMAIN, strategy="hostile-broken"))
    with pytest.raises(ConfigurationError, match="invalid alias"):
        tracker.mask(CUSTOMER, conversation="o1", store="broken")
    with pytest.raises(ConfigurationError, match="built one named"):
        tracker.set_policy("misnamed", Policy(domain=DOMAIN, strategy="hostile-misnamed"))
    with pytest.raises(ConfigurationError, match="unknown alias strategy"):
        tracker.set_policy("unknown", Policy(domain=DOMAIN, strategy="no-such-strategy"))


# -- relay ---------------------------------------------------------------------------------


def _message(to: str) -> bytes:
    return f"From: Carrier <c@carrier.example>\r\nTo: {to}\r\nSubject: x\r\n\r\nHi\r\n".encode()


def test_relay_storage_failures(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStorage()
    tracker = make_tracker(store, clock)
    relay = Relay(tracker)
    assert repr(relay) == (
        f"<Relay authenticator=Unauthenticated() max_size={relay.max_size} "
        f"max_hops={relay.max_hops}>"
    )
    customer = tracker.mask(CUSTOMER, conversation="o1")
    store.failing = {"aliases"}
    with caplog.at_level(logging.ERROR, logger="ct_alias.relay"):
        (outcome,) = relay.handle("c@carrier.example", [customer.address], _message("x")).outcomes
    assert (outcome.code, outcome.status) == (451, "4.3.0")
    assert outcome.conversation == "o1"
    # A refusal whose recording fails is still answered.
    store.failing = {"update"}
    with caplog.at_level(logging.ERROR, logger="ct_alias.relay"):
        (outcome,) = (
            Relay(tracker, max_size=10)
            .handle("c@carrier.example", [customer.address], _message(customer.address))
            .outcomes
        )
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    assert "could not record a refused delivery" in caplog.text


def test_relay_refuses_a_header_block_over_its_limit(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    customer = tracker.mask(CUSTOMER, conversation="o1")
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 900) for i in range(600))
    data = filler + _message(customer.address)
    (outcome,) = Relay(tracker).handle("c@carrier.example", [customer.address], data).outcomes
    assert (outcome.code, outcome.status) == (552, "5.3.4")
    assert "header" in outcome.reason
    events = [e.name for e in tracker.timeline("o1").events]
    assert events[-1] == "delivery-rejected"


def test_relay_refuses_an_expired_stranger_without_a_conversation(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    stranger = make_tracker(MemoryStorage(), clock).mask(CUSTOMER, conversation="o1").address
    clock.advance(timedelta(days=61))
    (outcome,) = Relay(tracker).handle("c@carrier.example", [stranger], _message(stranger)).outcomes
    assert (outcome.code, outcome.status) == (550, "5.2.1")
    assert outcome.conversation is None


def test_relay_loop_through_an_alias_of_an_alias(clock: FrozenClock) -> None:
    tracker = make_tracker(MemoryStorage(), clock)
    inner = tracker.mask(CUSTOMER, conversation="o1")
    outer = tracker.mask(inner.address, conversation="o1", role=Role.FOLLOW_UP)
    (outcome,) = Relay(tracker).handle("c@carrier.example", [outer.address], _message("x")).outcomes
    assert (outcome.code, outcome.status) == (554, "5.4.6")


# -- registries, optional extras, notifications ---------------------------------------------


class _BrokenEntryPoint:
    name = "broken"
    value = "nowhere.at_all:factory"

    def load(self) -> object:
        raise ImportError("No module named 'nowhere'")


class _GoodEntryPoint:
    name = "plugged"
    value = "tests:factory"

    def load(self) -> object:
        return lambda url, **options: MemoryStorage()


def test_store_scheme_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from ct_alias import _registry as generic
    from ct_alias.storage import registry

    monkeypatch.setattr(generic, "entry_points", lambda group: [_GoodEntryPoint()])
    fresh = registry._new_registry()  # noqa: SLF001 - a fresh registry per test
    assert isinstance(fresh.get("plugged")("plugged://x"), MemoryStorage)
    with pytest.raises(ConfigurationError, match="unknown storage URL scheme"):
        fresh.get("nope")  # entry points are read once
    monkeypatch.setattr(generic, "entry_points", lambda group: [_BrokenEntryPoint()])
    broken = registry._new_registry()  # noqa: SLF001 - a fresh registry per test
    with pytest.raises(ConfigurationError, match="cannot load storage URL scheme 'broken'"):
        broken.get("broken")
    with pytest.raises(ConfigurationError, match="a storage URL is a str"):
        registry.storage_from_url(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="scheme://"):
        registry.storage_from_url("memory")


def test_address_encryption_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ct_alias import MissingExtra
    from ct_alias.crypto import _aesgcm

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(MissingExtra) as info:
        _aesgcm()
    assert info.value.extra == "crypto"


def test_memory_store_needs_a_slot(tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1")
    with pytest.raises(ValueError, match="slot"):
        MemoryStorage().get_or_create(evolve(alias, slot=None), now=START)


def test_a_notification_that_cannot_be_composed_is_an_invalid_argument(tracker: Tracker) -> None:
    tracker.mask(CUSTOMER, conversation="o1")
    tracker.mask("vendas@loja.example.com", conversation="o1", role=Role.STORE)
    with pytest.raises(InvalidArgument) as info:
        tracker.notify("o1", "invoiced", subject="Pedido", text="\ud800")
    assert info.value.name == "notification"
    assert CUSTOMER not in str(info.value)
