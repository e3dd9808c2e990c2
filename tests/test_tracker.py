from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from ct_alias import (
    Alias,
    AliasStatus,
    ConfigurationError,
    CtAliasError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    FrozenClock,
    InvalidAddress,
    InvalidArgument,
    MalformedAlias,
    MemoryStorage,
    Policy,
    Role,
    Tracker,
    UnknownAlias,
)
from ct_alias.errors import AliasCollision
from ct_alias.testing import CountingStorage, race
from ct_alias.tracker import _whole_seconds

from .conftest import DOMAIN


def make_tracker(
    store: MemoryStorage,
    clock: FrozenClock,
    keys: Sequence[str] = ("FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM",),
    **kw: Any,
) -> Tracker:
    return Tracker(
        storage=store, keys=list(keys), default_policy=Policy(domain=DOMAIN), clock=clock, **kw
    )


# -- mask ----------------------------------------------------------------------


def test_mask_is_idempotent(tracker: Tracker) -> None:
    a = tracker.mask("Maria.Silva@Example.com.br", conversation="o1")
    assert tracker.mask("maria.silva@EXAMPLE.com.br", conversation="o1") == a
    assert tracker.mask("MARIA.SILVA@example.com.br", conversation="o1", role="customer") == a


def test_mask_keeps_the_local_part_as_given_for_delivery(tracker: Tracker) -> None:
    a = tracker.mask("Maria.Silva@Example.COM.br", conversation="o1")
    assert a.real_address == "Maria.Silva@example.com.br"


def test_other_conversation_role_or_store_gets_another_alias(tracker: Tracker) -> None:
    a = tracker.mask("maria@example.com", conversation="o1")
    others = {
        tracker.mask("maria@example.com", conversation="o2").address,
        tracker.mask("maria@example.com", conversation="o1", role=Role.FOLLOW_UP).address,
        tracker.mask("maria@example.com", conversation="o1", store="shop-2").address,
        a.address,
    }
    assert len(others) == 4


def test_alias_fields(tracker: Tracker, clock: FrozenClock) -> None:
    a = tracker.mask("maria@example.com", conversation="o1", store="s", role=Role.STORE)
    assert (a.conversation, a.store, a.role, a.strategy) == ("o1", "s", Role.STORE, "complex")
    assert a.created_at == clock.now()
    assert a.expires_at == clock.now() + timedelta(days=60)
    assert a.status is AliasStatus.ACTIVE
    assert "maria" not in repr(a)
    assert a.key not in repr(a)


def test_unmask_any_case(tracker: Tracker) -> None:
    a = tracker.mask("maria@example.com", conversation="o1")
    assert tracker.unmask(a.address.upper(), reason="carrier notification") == a
    assert tracker.unmask(a.address.title()) == a


def test_expiry_and_fresh_alias_after(tracker: Tracker, clock: FrozenClock) -> None:
    a = tracker.mask("maria@example.com", conversation="o1")
    clock.advance(timedelta(days=60) - timedelta(seconds=1))
    assert tracker.unmask(a.address) == a
    assert tracker.mask("maria@example.com", conversation="o1") == a
    clock.advance(timedelta(seconds=1))
    with pytest.raises(ExpiredAlias) as info:
        tracker.unmask(a.address)
    assert info.value.expired_at == a.expires_at
    assert info.value.reason is ExpiryReason.TTL
    assert a.status_at(clock.now()) is AliasStatus.EXPIRED
    b = tracker.mask("maria@example.com", conversation="o1")
    assert b.address != a.address
    assert tracker.unmask(b.address) == b
    # the old record is kept, out of its slot
    with pytest.raises(ExpiredAlias):
        tracker.unmask(a.address)


def test_key_rotation(clock: FrozenClock) -> None:
    store = MemoryStorage()
    old = make_tracker(
        store,
        clock,
        keys=["FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM"],
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    a = old.mask("maria@example.com", conversation="o1")
    rotated = make_tracker(
        store,
        clock,
        keys=[
            "FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM",
            "PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M",
        ],
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    assert rotated.unmask(a.address) == a
    assert rotated.mask("maria@example.com", conversation="o1") == a  # idempotent across rotation
    b = rotated.mask("joao@example.com", conversation="o1")
    retired = make_tracker(
        store,
        clock,
        keys=["PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M"],
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
    )
    assert retired.unmask(b.address) == b
    with pytest.raises(ForgedAlias):
        retired.unmask(a.address)


def test_no_storage_call_for_forged_malformed_or_expired(clock: FrozenClock) -> None:
    store = CountingStorage()
    tracker = make_tracker(store, clock)
    a = tracker.mask("maria@example.com", conversation="o1")
    store.calls.clear()
    local, _, domain = a.address.partition("@")
    forged = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    for bad, exc in [
        (forged, ForgedAlias),
        ("nobody@elsewhere.example.org", MalformedAlias),
        ("x@" + DOMAIN, MalformedAlias),
    ]:
        with pytest.raises(exc):
            tracker.unmask(bad)
    clock.advance(timedelta(days=61))
    with pytest.raises(ExpiredAlias):
        tracker.unmask(a.address)
    assert store.total == 0


def test_unknown_alias(clock: FrozenClock) -> None:
    # Signed by our key but never stored (another tracker, another store).
    other = make_tracker(MemoryStorage(), clock)
    a = other.mask("maria@example.com", conversation="o1")
    with pytest.raises(UnknownAlias) as info:
        make_tracker(MemoryStorage(), clock).unmask(a.address)
    assert info.value.alias == a.address
    assert isinstance(info.value, LookupError)


def test_every_single_character_change_is_rejected(tracker: Tracker) -> None:
    for store in ("default", "simple-store"):
        alias = tracker.mask("maria@example.com", conversation="o1", store=store).address
        chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.-@_+") - {"@"})
        for i, original in enumerate(alias):
            variants = [alias[:i] + alias[i + 1 :]]  # deletion
            variants += [alias[:i] + c + alias[i + 1 :] for c in chars if c != original.lower()]
            variants += [alias[:i] + c + alias[i:] for c in chars[:8]]  # insertion
            for changed in variants:
                if changed.lower() == alias:
                    continue
                with pytest.raises(CtAliasError) as info:
                    tracker.unmask(changed)
                assert isinstance(info.value, (ForgedAlias, MalformedAlias)), changed


@pytest.mark.parametrize(
    "bad",
    [
        "",
        None,
        "zelda",
        "zelda" * 60 + "@example.com",
        "zelda@b.com\r\nBcc: x@y.com",
        "zelda\x00@example.com",
        "zelda@example.com\n",
        " zelda@example.com",
        "Zelda <zelda@example.com>",
        "zelda@@example.com",
        "zelda@localhost",
        "zelda@[192.0.2.1]",
        "zelda@example..com",
        "zelda.@example.com",
        "zel(comment)da@example.com",
        "zelda@-example.com",
        42,
        b"zelda@example.com",
        "zelda\u202e@example.com",
        "zelda\u200f@example.com",
    ],
)
def test_bad_addresses_are_refused_and_nothing_is_stored(
    tracker: Tracker, store: MemoryStorage, bad: object
) -> None:
    with pytest.raises(InvalidAddress) as info:
        tracker.mask(bad, conversation="o1")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert info.value.address is bad
    assert "zelda" not in str(info.value).lower()
    assert len(store) == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"conversation": ""}, "conversation"),
        ({"conversation": None}, "conversation"),
        ({"conversation": "x" * 256}, "conversation"),
        ({"conversation": "o1\r\nX: y"}, "conversation"),
        ({"conversation": " o1"}, "conversation"),
        ({"conversation": "o1", "store": ""}, "store"),
        ({"conversation": "o1", "store": "s\x00"}, "store"),
        ({"conversation": "o1", "role": "boss"}, "role"),
        ({"conversation": "o1", "role": 3}, "role"),
    ],
)
def test_bad_arguments(
    tracker: Tracker, store: MemoryStorage, kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        tracker.mask("maria@example.com", **kwargs)
    assert info.value.name == name
    assert len(store) == 0


@pytest.mark.parametrize(
    "bad",
    [
        None,
        42,
        "",
        "@",
        "x@",
        "@" + DOMAIN,
        "a" * 255 + "@" + DOMAIN,
        "token@" + DOMAIN + "\r\nBcc: x@y.com",
        "ünïcode@" + DOMAIN,
        "a b@" + DOMAIN,
        "maria@example.com",
    ],
)
def test_unmask_bad_input(tracker: Tracker, bad: object) -> None:
    with pytest.raises(MalformedAlias):
        tracker.unmask(bad)  # type: ignore[arg-type]


def test_policies(tracker: Tracker) -> None:
    assert tracker.policy_for("simple-store").strategy == "simple"
    assert tracker.policy_for("unknown-store").strategy == "complex"
    assert tracker.domains == frozenset({DOMAIN})
    with pytest.raises(ConfigurationError):
        tracker.set_policy("x", "complex")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.set_policy("", Policy(domain=DOMAIN))


def test_tracker_needs_a_policy_and_keys(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError):
        Tracker(storage=MemoryStorage(), keys=[], default_policy=Policy(domain=DOMAIN))
    with pytest.raises(ConfigurationError):
        Tracker(
            storage=MemoryStorage(),
            keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
            default_policy=None,  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigurationError):
        Tracker(
            storage=MemoryStorage(),
            keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
            default_policy=Policy(domain=DOMAIN),
            index_key="",
        )


def test_repr_hides_secrets(clock: FrozenClock) -> None:
    t = make_tracker(
        MemoryStorage(),
        clock,
        keys=["super-secret-key"],
        index_key="7yl5Ro82syjPDqVwsJf_VPkU4_fpMCb3Ywre3zy_3Xc",
    )
    assert "super-secret" not in repr(t)
    assert "index-secret" not in repr(t)


def test_default_clock_is_utc() -> None:
    t = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
    )
    a = t.mask("maria@example.com", conversation="o1")
    assert a.created_at.utcoffset() == timedelta(0)


def test_concurrent_mask_yields_one_alias(tracker: Tracker, store: MemoryStorage) -> None:
    def worker() -> list[str]:
        return [tracker.mask("maria@example.com", conversation="o1").address for _ in range(50)]

    results = race(8, worker)
    assert len({address for addresses in results for address in addresses}) == 1
    assert len(store) == 1


class CollidingStorage(MemoryStorage):
    def __init__(self, collisions: int) -> None:
        super().__init__()
        self.collisions = collisions

    def get_or_create(self, candidate: Alias, *, now, entries=()):  # type: ignore[no-untyped-def]
        if self.collisions:
            self.collisions -= 1
            raise AliasCollision()
        return super().get_or_create(candidate, now=now, entries=entries)


def test_collision_is_retried(clock: FrozenClock) -> None:
    t = make_tracker(CollidingStorage(2), clock)
    assert t.mask("maria@example.com", conversation="o1").address


def test_endless_collisions_are_reported(clock: FrozenClock) -> None:
    t = make_tracker(CollidingStorage(100), clock)
    with pytest.raises(AliasCollision):
        t.mask("maria@example.com", conversation="o1")


def test_memory_store_detects_key_collision(tracker: Tracker, store: MemoryStorage) -> None:
    a = tracker.mask("maria@example.com", conversation="o1")
    with pytest.raises(AliasCollision):
        store.get_or_create(evolve(a, slot="another-slot"), now=a.created_at)


_CUSTOMER = "maria@example.com.br"


def test_lookup_of_a_signed_but_unknown_alias(tracker: Tracker, clock: FrozenClock) -> None:
    sibling = make_tracker(
        MemoryStorage(),
        clock,
        keys=[
            "925Pi-0zijU7qtri9rxhHnzmWY7rGTA-YyFRAdg0vxA",
            "25aern6xmujOWfUE7LgHIdwSiqXTKHiKzHpoRsmRCgI",
        ],
    )
    stranger = sibling.mask(_CUSTOMER, conversation="o1").address
    with pytest.raises(UnknownAlias):
        tracker.lookup(stranger)
    alias = tracker.mask(_CUSTOMER, conversation="o1")
    assert tracker.lookup(alias.address.upper()) == alias


def test_masking_an_existing_alias_mints_nothing(clock: FrozenClock) -> None:
    storage = CountingStorage()
    tracker = make_tracker(storage, clock)
    first = tracker.mask("maria@example.com", conversation="o1")
    storage.calls.clear()
    again = tracker.mask("Maria@EXAMPLE.com", conversation="o1")
    assert again == first
    # the slot was looked up; nothing was offered to get_or_create, nothing recorded
    assert storage.calls == {"current_alias": 1}
    assert len(storage.entries("o1", store=first.store)) == 1


def test_an_expired_alias_in_the_slot_is_replaced(clock: FrozenClock) -> None:
    storage = CountingStorage()
    tracker = make_tracker(storage, clock)
    first = tracker.mask("maria@example.com", conversation="o1")
    clock.advance(timedelta(days=61))
    second = tracker.mask("maria@example.com", conversation="o1")
    assert second.address != first.address
    assert storage.calls["get_or_create"] == 2


@given(st.datetimes(timezones=st.just(UTC)))
def test_expiry_is_cut_to_whole_seconds_as_replace_would(moment: datetime) -> None:
    cut = _whole_seconds(moment)
    assert cut == moment.replace(microsecond=0)
    assert cut.tzinfo is UTC
