from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ct_alias import (
    DEFAULT_TTL,
    ConfigurationError,
    CtAliasError,
    ExpiredAlias,
    ExpiryReason,
    Fallback,
    ForgedAlias,
    FrozenClock,
    InvalidAddress,
    MalformedAlias,
    MissingExtra,
    Policy,
    RevokedAlias,
    StorageError,
    SystemClock,
    UnknownAlias,
)
from ct_alias.clock import Clock, as_utc


def test_policy_defaults() -> None:
    p = Policy(domain="CT.Example.com")
    assert (p.domain, p.strategy, p.ttl, p.on_unrepresentable) == (
        "ct.example.com",
        "complex",
        DEFAULT_TTL,
        Fallback.COMPLEX,
    )
    assert timedelta(days=60) == DEFAULT_TTL
    assert Policy(domain="ct.münchen.de").domain == "ct.xn--mnchen-3ya.de"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"domain": ""},
        {"domain": None},
        {"domain": "not a domain"},
        {"domain": "x" * 64 + ".com"},
        {"domain": ("a" * 60 + ".") * 3 + "a" * 30 + ".com"},
        {"domain": "ct.example.com", "ttl": timedelta(0)},
        {"domain": "ct.example.com", "ttl": timedelta(days=-1)},
        {"domain": "ct.example.com", "ttl": timedelta(days=4000)},
        {"domain": "ct.example.com", "ttl": 60},
        {"domain": "ct.example.com", "strategy": ""},
        {"domain": "ct.example.com", "strategy": None},
        {"domain": "ct.example.com", "on_unrepresentable": "ignore"},
        {"domain": "ct.example.com", "on_unrepresentable": None},
    ],
)
def test_bad_policies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Policy(**kwargs)


def test_policy_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Policy("ct.example.com")  # type: ignore[call-arg]
    p = Policy(domain="ct.example.com", on_unrepresentable="error")
    assert p.on_unrepresentable is Fallback.ERROR
    with pytest.raises(AttributeError):
        p.ttl = timedelta(days=1)  # type: ignore[misc]


def test_frozen_clock() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FrozenClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    assert clock.advance(timedelta(hours=2)) == start + timedelta(hours=2)
    clock.set(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=3))))
    assert clock.now() == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert "2026-01-01T09:00:00" in repr(clock)
    with pytest.raises(TypeError):
        clock.advance(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        FrozenClock(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        as_utc("2026-01-01")  # type: ignore[arg-type]


def test_system_clock() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert isinstance(SystemClock(), Clock)
    assert repr(SystemClock()) == "SystemClock()"


def test_hierarchy() -> None:
    value_errors: tuple[type[CtAliasError], ...] = (
        ConfigurationError,
        InvalidAddress,
        MalformedAlias,
        ForgedAlias,
    )
    for exc in value_errors:
        assert issubclass(exc, CtAliasError)
        assert issubclass(exc, ValueError)
    for exc in (UnknownAlias, ExpiredAlias, RevokedAlias):
        assert issubclass(exc, CtAliasError)
        assert issubclass(exc, LookupError)
    assert issubclass(RevokedAlias, ExpiredAlias)
    assert issubclass(MissingExtra, ImportError)
    assert issubclass(MissingExtra, ConfigurationError)
    assert issubclass(StorageError, CtAliasError)


def test_messages_hide_local_parts() -> None:
    alias = "maria.silva@example.com.br-2abcdefghijklmnopqrstuvw.ct.example.com"
    for exc in (ForgedAlias(alias), UnknownAlias(alias), MalformedAlias(alias, "bad")):
        assert "maria.silva" not in str(exc)
        assert exc.alias == alias
    when = datetime(2026, 3, 1, tzinfo=UTC)
    revoked = RevokedAlias(alias, when)
    assert (revoked.reason, revoked.expired_at) == (ExpiryReason.REVOKED, when)
    assert "revoked" in str(revoked)
    assert "\r" not in str(MalformedAlias("x\r\nBcc: y@z.com", "bad"))
    assert len(str(MalformedAlias("x" * 5000, "bad"))) < 200


def test_missing_extra_names_the_extra() -> None:
    exc = MissingExtra("sql", "sqlalchemy", "The SQL store")
    assert "pip install 'ct-alias[sql]'" in str(exc)
    assert exc.extra == "sql"


def test_storage_error_carries_cause() -> None:
    cause = OSError("connection reset")
    exc = StorageError("reading an alias", cause)
    assert exc.cause is cause
    assert exc.transient
    assert "OSError" in str(exc)


def test_errors_pickle() -> None:
    # Exceptions cross process boundaries (multiprocessing, task queues).
    exc = pickle.loads(pickle.dumps(ForgedAlias("x@y.z")))
    assert isinstance(exc, ForgedAlias)
