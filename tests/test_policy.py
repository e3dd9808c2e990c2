"""Policy: per-store settings, validated when built."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ct_alias import (
    DEFAULT_TTL,
    ConfigurationError,
    Fallback,
    Policy,
)

from .hostile import DOMAIN

CUSTOMER = "maria@example.com.br"


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
