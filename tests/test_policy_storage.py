"""Policies are data: stored by ``set_policy``, seen by every tracker on the storage in time.

Every backend keeps them (memory, SQLite, PostgreSQL, MariaDB); a tracker re-reads
them when its copy is older than ``policy_refresh`` by its clock; a storage without
:class:`~ct_alias.storage.PolicyStorage` keeps working with per-process policies;
``ct-alias policy set`` in another process changes what this one masks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ct_alias import FrozenClock, OrderEvent, Policy, Tracker
from ct_alias.errors import ConfigurationError
from ct_alias.policy import POLICY_FORMAT, Fallback, UnauthenticatedMail
from ct_alias.storage import MemoryStorage, PolicyStorage, Storage
from ct_alias.storage.sql import SQLStorage, migrations

from .conftest import START
from .sql_servers import Target, clear

# Made with `ct-alias keys generate --count 2`.
SIGNING_KEY = "RQ88-gd8kxA-UEMckulyvZR-VVT3QbPPLJQTii1Es00"
INDEX_KEY = "jubcxqELIWA0aY8vCv1o7N3Z2-jnYU3odAIQcrlg5BQ"
DOMAIN = "ct.example.com"
CT_ALIAS = str(Path(sys.executable).with_name("ct-alias"))
REFRESH = timedelta(seconds=10)


def _tracker(storage: Storage, clock: FrozenClock) -> Tracker:
    return Tracker(
        storage=storage,
        keys=[SIGNING_KEY],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key=INDEX_KEY,
        policy_refresh=REFRESH,
    )


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


# -- the format ------------------------------------------------------------------------


def test_a_policy_round_trips_through_its_json_object() -> None:
    policy = Policy(
        domain="Mask.Example.org",
        strategy="simple",
        ttl=timedelta(days=30),
        on_unrepresentable=Fallback.ERROR,
        end_on={OrderEvent.INVOICED, OrderEvent.CANCELED, "returned"},
        grace=timedelta(hours=36),
        max_contacts=3,
        unauthenticated=UnauthenticatedMail.REFUSE,
        bounce_limit=5,
        bounce_window=timedelta(days=7),
    )
    data = policy.to_data()
    assert data == {
        "format": POLICY_FORMAT,
        "domain": "mask.example.org",
        "strategy": "simple",
        "ttl": 30 * 86400,
        "on_unrepresentable": "error",
        "end_on": ["canceled", "invoiced", "returned"],
        "grace": 36 * 3600,
        "max_contacts": 3,
        "unauthenticated": "refuse",
        "bounce_limit": 5,
        "bounce_window": 7 * 86400,
    }
    assert Policy.from_data(json.loads(json.dumps(data))) == policy


@pytest.mark.parametrize(
    "data",
    [
        {"domain": DOMAIN},
        {"format": POLICY_FORMAT + 1, "domain": DOMAIN},
        {"format": POLICY_FORMAT, "domain": DOMAIN, "colour": "red"},
        {"format": POLICY_FORMAT, "domain": DOMAIN, "ttl": "60 days"},
        {"format": POLICY_FORMAT, "domain": DOMAIN, "end_on": "invoiced"},
        {"format": POLICY_FORMAT},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_stored_policy_is_refused(data: Any) -> None:
    with pytest.raises(ConfigurationError):
        Policy.from_data(data)


# -- trackers on one storage -----------------------------------------------------------


def test_every_tracker_on_a_storage_sees_a_policy_within_the_refresh(storage: Storage) -> None:
    assert isinstance(storage, PolicyStorage)
    clock = FrozenClock(START)
    admin, relay = _tracker(storage, clock), _tracker(storage, clock)
    assert relay.mask("ana@example.com", conversation="1001", store="shop-b").strategy == "complex"

    admin.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    assert admin.mask("bia@example.com", conversation="1001", store="shop-b").strategy == "simple"
    # the relay's copy is younger than the refresh: still the old policy
    clock.advance(REFRESH - timedelta(seconds=1))
    assert relay.mask("bia@example.com", conversation="1002", store="shop-b").strategy == "complex"
    clock.advance(timedelta(seconds=1))
    alias = relay.mask("caio@example.com", conversation="1003", store="shop-b")
    assert alias.strategy == "simple"
    assert relay.policy_for("shop-b") == Policy(domain=DOMAIN, strategy="simple")
    assert relay.policy_for("shop-a") == Policy(domain=DOMAIN)
    # a fresh tracker reads them at once
    assert _tracker(storage, clock).policy_for("shop-b").strategy == "simple"
    assert storage.policies() == {"shop-b": Policy(domain=DOMAIN, strategy="simple").to_data()}


def test_a_copy_is_fresh_from_its_read_to_just_before_the_refresh() -> None:
    """The copy serves [read, read + refresh): a clock set back, or at the refresh, reads again."""
    storage = MemoryStorage()
    admin_clock, clock = FrozenClock(START), FrozenClock(START)
    admin, relay = _tracker(storage, admin_clock), _tracker(storage, clock)
    assert relay.policy_for("shop-b").strategy == "complex"  # read at START
    admin.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    clock.advance(REFRESH - timedelta(microseconds=1))
    assert relay.policy_for("shop-b").strategy == "complex"
    clock.set(START - timedelta(microseconds=1))  # set back: the copy is not trusted
    assert relay.policy_for("shop-b").strategy == "simple"
    admin.set_policy("shop-b", Policy(domain=DOMAIN, strategy="complex"))
    clock.advance(REFRESH)  # read again at START - 1 µs, so stale from here on
    assert relay.policy_for("shop-b").strategy == "complex"


def test_policies_read_near_the_end_of_time_are_kept() -> None:
    """A read whose refresh would pass datetime.max keeps its copy (no overflow)."""
    storage = MemoryStorage()
    end = datetime.max.replace(tzinfo=UTC) - timedelta(seconds=1)
    admin, relay = _tracker(storage, FrozenClock(START)), _tracker(storage, FrozenClock(end))
    assert relay.policy_for("shop-b").strategy == "complex"
    admin.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    assert relay.policy_for("shop-b").strategy == "complex"


def test_a_later_policy_replaces_the_stored_one(storage: Storage) -> None:
    assert isinstance(storage, PolicyStorage)
    tracker = _tracker(storage, FrozenClock(START))
    tracker.set_policy("shop-a", Policy(domain=DOMAIN, strategy="simple"))
    tracker.set_policy("shop-a", Policy(domain=DOMAIN, ttl=timedelta(days=5)))
    assert Policy.from_data(storage.policies()["shop-a"]) == Policy(
        domain=DOMAIN, ttl=timedelta(days=5)
    )


def test_a_stored_policy_this_process_cannot_use_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = MemoryStorage()
    storage.save_policy("shop-a", {"format": POLICY_FORMAT, "domain": DOMAIN, "strategy": "nope"})
    storage.save_policy("shop-b", {"format": 99})
    storage.save_policy("shop-c", Policy(domain=DOMAIN, strategy="simple").to_data())
    tracker = _tracker(storage, FrozenClock(START))
    assert tracker.policy_for("shop-a") == Policy(domain=DOMAIN)
    assert tracker.policy_for("shop-b") == Policy(domain=DOMAIN)
    assert tracker.policy_for("shop-c").strategy == "simple"
    assert "shop-a" in caplog.text
    assert "shop-b" in caplog.text


class _OnlyStorage:
    """A third-party backend written before policies were data: the Storage methods only."""

    def __init__(self, inner: Storage | None = None) -> None:
        inner = inner if inner is not None else MemoryStorage()
        for name in (
            "get_or_create",
            "get",
            "aliases",
            "update",
            "append",
            "entries",
            "purge",
            "scan",
            "reseal",
        ):
            setattr(self, name, getattr(inner, name))


def test_a_storage_without_policies_keeps_per_process_policies() -> None:
    storage: Any = _OnlyStorage()
    assert isinstance(storage, Storage)
    assert not isinstance(storage, PolicyStorage)
    clock = FrozenClock(START)
    one, other = _tracker(storage, clock), _tracker(storage, clock)
    one.set_policy("shop-b", Policy(domain=DOMAIN, strategy="simple"))
    clock.advance(REFRESH * 3)
    assert one.mask("ana@example.com", conversation="1", store="shop-b").strategy == "simple"
    assert other.mask("bia@example.com", conversation="1", store="shop-b").strategy == "complex"


# -- the schema -----------------------------------------------------------------------


def test_schema_version_2_upgrades_and_keeps_its_aliases(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at version 2 (before policies) gets the policy table; its aliases still work."""
    prefix = f"p{os.getpid() % 1000}_{target.name[:2]}_"
    with target.open(prefix=prefix) as storage:
        try:
            steps = migrations.STEPS
            monkeypatch.setattr(migrations, "STEPS", steps[:2])
            assert storage.upgrade() == 2
            assert not sa.inspect(storage.engine).has_table(
                storage.tables.policies.name, schema=storage.tables.policies.schema
            )
            clock = FrozenClock(START)
            without: Any = _OnlyStorage(storage)  # a release without policies in storage
            old = Tracker(
                storage=without,
                keys=[SIGNING_KEY],
                default_policy=Policy(domain=DOMAIN),
                clock=clock,
                index_key=INDEX_KEY,
            )
            alias = old.mask("ana@example.com", conversation="1001", store="shop-a")
            monkeypatch.setattr(migrations, "STEPS", steps)
            assert storage.upgrade() == steps[-1].version
            tracker = _tracker(storage, clock)
            assert tracker.unmask(alias.address).real_address == "ana@example.com"
            tracker.set_policy("shop-a", Policy(domain=DOMAIN, strategy="simple"))
            again = tracker.mask("bia@example.com", conversation="1001", store="shop-a")
            assert again.strategy == "simple"
            assert storage.upgrade() == steps[-1].version
        finally:
            storage.tables.metadata.drop_all(storage.engine)


# -- two processes ---------------------------------------------------------------------


def _cli_url(target: Target) -> str:
    if target.name != "postgresql":
        return target.url
    return (
        make_url(target.url)
        .update_query_dict({"options": f"-csearch_path={target.options['schema']}"})
        .render_as_string(hide_password=False)
    )


def _ct_alias(*argv: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CT_ALIAS_")}
    return subprocess.run(
        [CT_ALIAS, *argv, "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_another_process_sets_simple_and_this_one_masks_simple(target: Target) -> None:
    db = _cli_url(target)
    clock = FrozenClock(START)
    with target.open() as storage:
        tracker = _tracker(storage, clock)
        first = tracker.mask("ana@example.com", conversation="1001", store="shop-b")
        assert first.strategy == "complex"
        done = _ct_alias("policy", "set", "shop-b", "--mask", "simple", "--domain", DOMAIN, db=db)
        assert done.returncode == 0, done.stderr
        assert "shop-b" in done.stdout
        clock.advance(REFRESH)
        alias = tracker.mask("bia@example.com", conversation="1001", store="shop-b")
        assert alias.strategy == "simple"
        assert tracker.mask("caio@example.com", conversation="1001").strategy == "complex"

        done = _ct_alias("policy", "set", "shop-b", "--ttl-days", "7", db=db)
        assert done.returncode == 0, done.stderr
        clock.advance(REFRESH)
        assert tracker.policy_for("shop-b") == Policy(
            domain=DOMAIN, strategy="simple", ttl=timedelta(days=7)
        )
        shown = _ct_alias("policy", "show", db=db)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == {"shop-b": tracker.policy_for("shop-b").to_data()}
        one = _ct_alias("policy", "show", "shop-b", db=db)
        assert json.loads(one.stdout)["shop-b"]["strategy"] == "simple"
        none = _ct_alias("policy", "show", "shop-z", db=db)
        assert none.returncode == 0
        assert "no stored policy" in none.stdout


def test_policy_set_needs_a_domain_for_a_new_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    assert _ct_alias("db", "upgrade", db=db).returncode == 0
    done = _ct_alias("policy", "set", "shop-a", "--mask", "simple", db=db)
    assert done.returncode == 1
    assert "--domain" in done.stderr
    bad = _ct_alias("policy", "set", "shop-a", "--domain", "not a domain", db=db)
    assert bad.returncode == 2, bad.stderr
    store = _ct_alias("policy", "set", "s" * 1000, "--domain", DOMAIN, db=db)
    assert store.returncode == 2
    assert "STORE" in store.stderr
    with SQLStorage(db) as storage:
        assert storage.policies() == {}


def test_policy_commands_refuse_a_storage_without_policies(tmp_path: Path) -> None:
    del tmp_path
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys\n"
                "from ct_alias.cli import main\n"
                "from ct_alias.storage import register_storage_scheme\n"
                "from tests.test_policy_storage import _OnlyStorage\n"
                "class S(_OnlyStorage):\n"
                "    def upgrade(self): return 0\n"
                "register_storage_scheme('plain', lambda url, **kw: S())\n"
                "sys.exit(main(['policy', 'show', '--db', 'plain://']))\n"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 1, done.stderr
    assert "does not keep policies" in done.stderr
