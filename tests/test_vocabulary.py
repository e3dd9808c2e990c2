"""The shared vocabulary: each limit declared once, and used where it applies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ct_alias import (
    Alias,
    OrderEvent,
    Policy,
    Role,
    aliases,
    policy,
    timeline,
    vocabulary,
)
from ct_alias.errors import ConfigurationError, InvalidArgument
from ct_alias.testing import make_tracker


def test_the_layers_share_the_vocabulary_objects() -> None:
    assert timeline.OrderEvent is vocabulary.OrderEvent is OrderEvent
    assert aliases.Role is vocabulary.Role is Role
    assert Alias.__annotations__["role"] in ("Role", Role)


def test_rfc_5321_limits() -> None:
    assert (vocabulary.MAX_LOCAL, vocabulary.MAX_LABEL) == (64, 63)
    assert (vocabulary.MAX_DOMAIN, vocabulary.MAX_ADDRESS) == (253, 254)


def test_policy_no_longer_imports_upward() -> None:
    source = policy.__loader__.get_source(policy.__name__)  # type: ignore[union-attr]
    assert source is not None
    assert "from .timeline" not in source
    assert "from .strategies" not in source


@pytest.mark.parametrize(
    ("name", "limit"),
    [("conversation", vocabulary.MAX_CONVERSATION), ("store", vocabulary.MAX_STORE)],
)
def test_identifier_limits_are_the_ones_declared(name: str, limit: int) -> None:
    tracker = make_tracker()
    ok = {"conversation": "o1", "store": "shop", name: "x" * limit}
    tracker.mask("maria@example.com", **ok)
    too_long = {**ok, name: "x" * (limit + 1)}
    with pytest.raises(InvalidArgument, match=f"1 to {limit} characters"):
        tracker.mask("maria@example.com", **too_long)


def test_event_name_and_duration_limits_are_the_ones_declared() -> None:
    tracker = make_tracker()
    tracker.record_event("o1", "e" * vocabulary.MAX_EVENT)
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "e" * (vocabulary.MAX_EVENT + 1))
    longest = vocabulary.MAX_DURATION
    tracker.end("o1", grace=longest)
    with pytest.raises(InvalidArgument, match=f"at most {longest.days} days"):
        tracker.end("o1", grace=longest + timedelta(days=1))
    Policy(domain="ct.example.com", grace=longest)
    with pytest.raises(ConfigurationError):
        Policy(domain="ct.example.com", grace=longest + timedelta(days=1))


def test_the_sql_columns_are_as_wide_as_the_limits() -> None:
    pytest.importorskip("sqlalchemy")
    from ct_alias.storage.sql import build_metadata

    tables = build_metadata().tables
    aliases_table = tables["ct_alias_aliases"]
    assert getattr(aliases_table.c.conversation.type, "length", None) == vocabulary.MAX_CONVERSATION
    assert getattr(aliases_table.c.store.type, "length", None) == vocabulary.MAX_STORE
    assert getattr(tables["ct_alias_timeline"].c.name.type, "length", None) == vocabulary.MAX_EVENT
