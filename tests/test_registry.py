"""Custom strategies, registered by function or by entry point."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ct_alias import (
    AliasStrategy,
    ConfigurationError,
    ForgedAlias,
    FrozenClock,
    MemoryStorage,
    Policy,
    RealAddress,
    Token,
    TokenFormat,
    Tracker,
    available_strategies,
    register_strategy,
)
from ct_alias import strategies as strategies_module
from ct_alias.codec import AliasCodec
from ct_alias.strategies import ComplexStrategy

from .conftest import DOMAIN

SHOP_FORMAT = TokenFormat(version=20, id_size=5, mac_size=5, name="shop-v1")


class ShopStrategy:
    """``shop-<token>@<domain>``: a custom, prefixed opaque alias."""

    name = "shop"

    def __init__(self, codec: AliasCodec) -> None:
        self.codec = codec

    def make(self, real: RealAddress, *, domain: str, expires_at: datetime) -> str:
        del real
        return f"shop-{self.codec.encode(SHOP_FORMAT, expires_at, bind=domain.encode())}@{domain}"

    def read(self, local: str, domain: str, *, alias_domain: str) -> Token | None:
        if domain != alias_domain or not local.startswith("shop-"):
            return None
        return self.codec.decode(SHOP_FORMAT, local[5:], bind=domain.encode())


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategies_module, "_registry", strategies_module._new_registry())  # noqa: SLF001 - a fresh registry per test


@pytest.mark.usefixtures("fresh_registry")
def test_register_and_use_a_custom_strategy(clock: FrozenClock) -> None:
    register_strategy("shop", ShopStrategy)
    assert "shop" in available_strategies()
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
    )
    tracker.set_policy("s1", Policy(domain=DOMAIN, strategy="shop"))
    alias = tracker.mask("maria@example.com", conversation="o1", store="s1")
    assert alias.address.startswith("shop-k")
    assert alias.strategy == "shop"
    assert tracker.unmask(alias.address.upper()) == alias
    assert isinstance(
        ShopStrategy(AliasCodec("jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE")), AliasStrategy
    )
    complex_alias = tracker.mask("maria@example.com", conversation="o1")
    assert tracker.unmask(complex_alias.address) == complex_alias
    with pytest.raises(ForgedAlias):
        tracker.unmask("shop-k" + "0" * 23 + "@" + DOMAIN)


@pytest.mark.usefixtures("fresh_registry")
@pytest.mark.parametrize("name", ["", "Upper", "1abc", "with space", "x" * 33, None])
def test_bad_names(name: object) -> None:
    with pytest.raises(ConfigurationError):
        register_strategy(name, ShopStrategy)  # type: ignore[arg-type]


@pytest.mark.usefixtures("fresh_registry")
def test_names_are_not_silently_replaced() -> None:
    with pytest.raises(ConfigurationError, match="already registered"):
        register_strategy("complex", ShopStrategy)
    register_strategy("shop", ShopStrategy)
    register_strategy("shop", ShopStrategy, replace=True)
    with pytest.raises(ConfigurationError, match="not callable"):
        register_strategy("other", "not a factory")  # type: ignore[arg-type]


@pytest.mark.usefixtures("fresh_registry")
def test_a_factory_must_build_what_it_is_named(clock: FrozenClock) -> None:
    register_strategy("liar", ShopStrategy)
    with pytest.raises(ConfigurationError, match="named 'shop'"):
        Tracker(
            storage=MemoryStorage(),
            keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
            default_policy=Policy(domain=DOMAIN, strategy="liar"),
            clock=clock,
        )


@pytest.fixture
def entry_point_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tiny installed distribution declaring ``shop`` in the entry-point group."""
    (tmp_path / "shop_plugin.py").write_text(
        "from tests.test_registry import ShopStrategy as factory\n", encoding="utf-8"
    )
    dist = tmp_path / "shop_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[ct_alias.strategies]\nshop = shop_plugin:factory\nbroken = shop_plugin:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("shop_plugin", None)


@pytest.mark.usefixtures("fresh_registry")
def test_entry_point_strategy(entry_point_dist: Path, clock: FrozenClock) -> None:
    del entry_point_dist
    with pytest.raises(ConfigurationError, match="cannot load alias strategy 'broken'"):
        strategies_module.strategy_factory("shop")


@pytest.mark.usefixtures("fresh_registry")
def test_entry_point_strategy_loads(entry_point_dist: Path, clock: FrozenClock) -> None:
    (entry_point_dist / "shop_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[ct_alias.strategies]\nshop = shop_plugin:factory\n"
    )
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN, strategy="shop"),
        clock=clock,
    )
    alias = tracker.mask("maria@example.com", conversation="o1")
    assert alias.strategy == "shop"
    assert tracker.unmask(alias.address) == alias


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


@pytest.mark.usefixtures("fresh_registry")
def test_a_replaced_complex_factory_reads_its_own_aliases(clock: FrozenClock) -> None:
    """unmask's shortcut verifies complex tokens with the tracker's codec only under the built-in
    factory: a replacement's strategy (here, signing with keys of its own) reads its aliases."""
    own = AliasCodec(["Yc0UCgFFKcYHBsxpMBP5ud2_ZXJJg_RyP7NHrbfLW9M"])
    register_strategy("complex", lambda codec: ComplexStrategy(own), replace=True)
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="ZzE0BvbqX6kAAl1FjDbWkm1BlUmD5wV3Yk2Db8oFqcw",
    )
    alias = tracker.mask("maria@example.com.br", conversation="o1")
    assert tracker.unmask(alias.address) == alias
    assert tracker.unmask(alias.address.upper()) == alias
