from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ct_alias import (
    ConfigurationError,
    CtAliasError,
    ForgedAlias,
    FrozenClock,
    MalformedAlias,
    MemoryStorage,
    Policy,
    Role,
    Tracker,
    UnrepresentableAddress,
    normalize_address,
)
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1, AliasCodec
from ct_alias.strategies import ComplexStrategy, SimpleStrategy

from .conftest import DOMAIN, START

EXPIRES = datetime(2026, 3, 2, tzinfo=UTC)
SIMPLE_RE = re.compile(r"(?P<local>[^@]+)@(?P<real>.+)-(?P<tag>[0-9a-v]{24})\.ct\.example\.com")


@pytest.fixture
def simple() -> SimpleStrategy:
    return SimpleStrategy(AliasCodec(["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"]))


def test_simple_grammar(tracker: Tracker) -> None:
    alias = tracker.mask(
        "Maria.Silva@Example.com.br", conversation="1077540530277-01", store="simple-store"
    )
    match = SIMPLE_RE.fullmatch(alias.address)
    assert match, alias.address
    assert match["local"] == "maria.silva"
    assert match["real"] == "example.com.br"
    assert match["tag"][0] == SIMPLE_V1.marker
    assert alias.strategy == "simple"
    assert alias.real_address == "Maria.Silva@example.com.br"


def test_complex_reveals_nothing(tracker: Tracker) -> None:
    alias = tracker.mask("Maria.Silva@Shop-Domain.com.br", conversation="c1")
    local, _, domain = alias.address.partition("@")
    assert domain == DOMAIN
    assert re.fullmatch(r"[0-9a-v]{40}", local)
    assert local[0] == COMPLEX_V1.marker
    for part in ("maria", "silva", "shop-domain"):
        assert part not in local


@pytest.mark.parametrize(
    "address",
    [
        "a-b@my-shop.example-domain.com.br",
        "first.last+tag@sub1.sub-2.x-y.example.co.uk",
        "x@1-2-3.example.com",
        "user@xn--mnchen-3ya.de",
        "user@münchen.de",
        "o'neil@example.com",
        "a@b.co",
    ],
)
def test_simple_round_trips_awkward_domains(tracker: Tracker, address: str) -> None:
    alias = tracker.mask(address, conversation="c1", store="simple-store")
    assert alias.strategy == "simple"
    assert tracker.unmask(alias.address) == alias
    assert tracker.unmask(alias.address.upper()) == alias


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ('"john doe"@example.com', "quoted"),
        ("josé@example.com", "not ASCII"),
        ("a@" + "x" * 40 + ".com" + ".y" * 100, "length"),
        ("a@example." + "x" * 40, "label"),
        ("x" * 64 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 50 + ".com", "length"),
    ],
)
def test_unrepresentable_falls_back_to_complex(tracker: Tracker, address: str, why: str) -> None:
    del why
    alias = tracker.mask(address, conversation="c1", store="simple-store")
    assert alias.strategy == "complex"
    assert re.fullmatch(r"1[0-9a-v]{39}@ct\.example\.com", alias.address)
    assert tracker.unmask(alias.address).real_address == normalize_address(address).address


def test_unrepresentable_can_be_an_error(tracker: Tracker) -> None:
    tracker.set_policy(
        "strict", Policy(strategy="simple", domain=DOMAIN, on_unrepresentable="error")
    )
    with pytest.raises(UnrepresentableAddress) as info:
        tracker.mask("josé@example.com", conversation="c1", store="strict")
    assert info.value.strategy == "simple"
    assert "josé" not in str(info.value)


def test_domain_literal_is_unrepresentable(simple: SimpleStrategy) -> None:
    real = normalize_address("a@[192.0.2.1]", allow_domain_literal=True)
    with pytest.raises(UnrepresentableAddress):
        simple.make(real, domain=DOMAIN, expires_at=EXPIRES)


def test_simple_cannot_be_minted_for_another_address(tracker: Tracker) -> None:
    alias = tracker.mask("maria@example.com", conversation="c1", store="simple-store")
    tag = SIMPLE_RE.fullmatch(alias.address)["tag"]  # type: ignore[index]
    for other in (
        f"mario@example.com-{tag}.{DOMAIN}",
        f"maria@example.org-{tag}.{DOMAIN}",
        f"maria@evil.example.com-{tag}.{DOMAIN}",
    ):
        with pytest.raises(ForgedAlias):
            tracker.unmask(other)


@pytest.mark.parametrize(
    "alias",
    [
        f"maria@example.com.{DOMAIN}",
        f"maria@example.com-short.{DOMAIN}",
        f"maria@-{'2' * 24}.{DOMAIN}",
        f"@example.com-{'2' * 24}.{DOMAIN}",
    ],
)
def test_simple_damaged_is_malformed(tracker: Tracker, alias: str) -> None:
    with pytest.raises(MalformedAlias):
        tracker.unmask(alias)


def test_read_ignores_other_shapes(simple: SimpleStrategy) -> None:
    assert simple.read("x", "other.example.org", alias_domain=DOMAIN) is None
    complex_ = ComplexStrategy(AliasCodec(["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"]))
    assert complex_.read("x", "sub." + DOMAIN, alias_domain=DOMAIN) is None


def test_the_store_address_is_masked_the_same_way(tracker: Tracker) -> None:
    customer = tracker.mask("maria@example.com", conversation="o1", store="simple-store")
    shop = tracker.mask(
        "vendas@loja.example.com", conversation="o1", store="simple-store", role=Role.STORE
    )
    assert customer.strategy == shop.strategy == "simple"
    assert shop.address.startswith("vendas@loja.example.com-")


def test_nested_alias_domains(clock: FrozenClock) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain="ct.example.com", strategy="simple"),
        clock=clock,
    )
    tracker.set_policy("eu", Policy(domain="eu.ct.example.com"))
    tracker.set_policy("eu-simple", Policy(domain="eu.ct.example.com", strategy="simple"))
    for store in ("default", "eu", "eu-simple"):
        alias = tracker.mask("maria@shop-1.example.com", conversation="o1", store=store)
        assert tracker.unmask(alias.address) == alias


# -- properties ---------------------------------------------------------------

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda s: "--" not in s
)
locals_ = (
    st.lists(st.text(ATEXT, min_size=1, max_size=20), min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda s: len(s) <= 64)
)
idn_labels = st.sampled_from(["münchen", "bücher", "españa", "日本", "пример", "straße"])
domains = st.builds(
    lambda parts, idn, tld: ".".join([*parts, *idn, tld]),
    st.lists(labels, min_size=1, max_size=4),
    st.lists(idn_labels, max_size=1),
    st.sampled_from(["com", "com.br", "org", "co.uk", "de", "museum", "xn--p1ai"]),
)


@given(local=locals_, domain=domains, store=st.sampled_from(["default", "simple-store"]))
def test_round_trip_property(local: str, domain: str, store: str) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=[
            "FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM",
            "PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M",
        ],
        default_policy=Policy(domain=DOMAIN),
        clock=FrozenClock(START),
    )
    tracker.set_policy("simple-store", Policy(domain=DOMAIN, strategy="simple"))
    address = f"{local}@{domain}"
    try:
        real = normalize_address(address)
    except CtAliasError:
        assume(False)
        raise
    alias = tracker.mask(address, conversation="order-1", store=store)
    assert len(alias.address) <= 254
    assert len(alias.address.partition("@")[0]) <= 64
    assert all(len(label) <= 63 for label in alias.address.rpartition("@")[2].split("."))
    assert alias.address == alias.address.lower()
    assert tracker.unmask(alias.address) == alias
    assert tracker.unmask(alias.address.upper()) == alias
    assert alias.real_address == real.address
    # the same address in another case is the same participant
    # (only ASCII domains: upper-casing "straße" gives "STRASSE", another domain)
    other_case = domain.upper() if domain.isascii() else domain
    again = tracker.mask(local.upper() + "@" + other_case, conversation="order-1", store=store)
    assert again == alias


@given(local=st.text(string.ascii_lowercase, min_size=64, max_size=64), domain=domains)
def test_64_char_local_parts(local: str, domain: str) -> None:
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN, strategy="simple"),
        clock=FrozenClock(START),
    )
    alias = tracker.mask(f"{local}@{domain}", conversation="c")
    assert (
        tracker.unmask(alias.address).real_address
        == f"{local}@{normalize_address('a@' + domain).domain}"
    )


def test_unknown_strategy_is_a_configuration_error(tracker: Tracker) -> None:
    with pytest.raises(ConfigurationError, match="unknown alias strategy 'nope'"):
        tracker.set_policy("x", Policy(domain=DOMAIN, strategy="nope"))


def test_ttl_is_carried(tracker: Tracker, clock: FrozenClock) -> None:
    tracker.set_policy("short", Policy(domain=DOMAIN, ttl=timedelta(hours=1)))
    alias = tracker.mask("a@example.com", conversation="c", store="short")
    assert alias.expires_at == clock.now() + timedelta(hours=1)


# -- the RFC 5321 limits, exactly at and one past each --------------------------------
# With the alias domain ct.example.com, a simple alias is its real address plus 40
# octets ("-", the 24-character tag, ".", the 14-octet alias domain).


def _domain(length: int, last: str = "com") -> str:
    """A valid domain of exactly ``length`` octets ending in the label ``last``."""
    labels: list[str] = []
    rest = length - len(last)
    while rest > 0:
        take = min(63, rest - 1)
        if rest - 1 - take == 1:  # never leave a lone dot
            take -= 1
        labels.append("d" * take)
        rest -= take + 1
    domain = ".".join([*labels, last])
    assert len(domain) == length
    return domain


def _make(simple: SimpleStrategy, address: str) -> str:
    return simple.make(normalize_address(address), domain=DOMAIN, expires_at=EXPIRES)


@pytest.mark.parametrize("local_size", [1, 64])
def test_simple_alias_of_exactly_254_octets(simple: SimpleStrategy, local_size: int) -> None:
    local = "m" * local_size
    alias = _make(simple, f"{local}@{_domain(213 - local_size)}")
    assert len(alias) == 254
    assert len(alias.rpartition("@")[2]) == 253 - local_size


@pytest.mark.parametrize("local_size", [1, 64])
def test_simple_alias_one_past_254_octets(simple: SimpleStrategy, local_size: int) -> None:
    """255 octets; with a one-octet local part its domain is 253 (MAX_DOMAIN) too."""
    with pytest.raises(UnrepresentableAddress, match="length limits"):
        _make(simple, f"{'m' * local_size}@{_domain(214 - local_size)}")


def test_simple_local_part_of_64_and_65_octets(simple: SimpleStrategy) -> None:
    assert _make(simple, f"{'m' * 64}@example.com").startswith("m" * 64 + "@")
    with pytest.raises(UnrepresentableAddress, match="64 octets"):
        _make(simple, f"{'m' * 65}@example.com")


def test_simple_tagged_label_of_63_and_64_octets(simple: SimpleStrategy) -> None:
    """The last real label gains "-" and the tag: 38 + 25 = 63 fits, 39 does not."""
    alias = _make(simple, f"maria@example.{'t' * 38}")
    labels = alias.rpartition("@")[2].split(".")
    assert max(len(label) for label in labels) == 63
    with pytest.raises(UnrepresentableAddress, match="63 characters"):
        _make(simple, f"maria@example.{'t' * 39}")


def test_simple_quoted_and_non_ascii_local_parts_are_unrepresentable(
    simple: SimpleStrategy,
) -> None:
    for address in ('"maria silva"@example.com', "joão@example.com"):
        with pytest.raises(UnrepresentableAddress, match="quoted or not ASCII"):
            _make(simple, address)


@pytest.mark.parametrize(
    ("local", "domain"),
    [
        ("", f"example.com-{'2' * 24}.{DOMAIN}"),  # no local part, a tag of the right length
        ("maria", f"-{'2' * 24}.{DOMAIN}"),  # no real domain
        ("maria", f"example.com{'2' * 24}.{DOMAIN}"),  # no hyphen before the tag
        ("maria", f"example.com-{'2' * 23}.{DOMAIN}"),  # a tag one character short
        ("maria", f"example.com-{'2' * 25}.{DOMAIN}"),  # one character long
    ],
)
def test_simple_read_refuses_each_missing_part_alone(
    simple: SimpleStrategy, local: str, domain: str
) -> None:
    with pytest.raises(MalformedAlias, match="not a simple alias"):
        simple.read(local, domain, alias_domain=DOMAIN)
