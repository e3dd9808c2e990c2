"""The conversation rules' policy fields: validated, stored as data, set from the command line."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ct_alias import ConfigurationError, OrderEvent, Policy
from ct_alias.cli import main
from ct_alias.policy import Window

DOMAIN = "ct.example.com"
RULES = {
    "conversation_rules": True,
    "support_address": "Ajuda@Loja.Example.com",
    "to_customer_window": Window(OrderEvent.DELIVERED, timedelta(days=30)),
    "from_customer_window": Window("mediation-opened", timedelta(hours=12)),
    "to_customer_per_hour": 5,
    "from_customer_per_hour": 20,
    "unsubscribe_url": "https://loja.example.com/unsubscribe/{token}",
}


def test_every_rule_field_round_trips_through_data() -> None:
    policy = Policy(domain=DOMAIN, **RULES)  # type: ignore[arg-type]
    data = json.loads(json.dumps(policy.to_data()))
    assert Policy.from_data(data) == policy
    assert data["to_customer_window"] == {"after": "delivered", "within": 30 * 86400}
    assert data["support_address"] == "Ajuda@loja.example.com"  # the domain is normalised
    assert policy.relay_rules


def test_a_policy_without_rules_is_stored_as_before() -> None:
    data = Policy(domain=DOMAIN).to_data()
    assert not set(RULES) & set(data)
    assert not Policy.from_data(data).relay_rules


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to_customer_window", {"after": "delivered"}),
        ("to_customer_window", {"after": "delivered", "within": "30d"}),
        ("to_customer_window", {"after": "", "within": 60}),
        ("to_customer_window", {"after": "delivered", "within": 0}),
        ("to_customer_per_hour", 0),
        ("to_customer_per_hour", True),
        ("from_customer_per_hour", 10_001),
        ("support_address", "not an address"),
        ("unsubscribe_url", "http://loja.example.com/{token}"),
        ("unsubscribe_url", "https://loja.example.com/{token}/{token}"),
        ("conversation_rules", "yes"),
    ],
)
def test_bad_stored_rule_fields_are_refused(field: str, value: object) -> None:
    data = Policy(domain=DOMAIN).to_data()
    data[field] = value
    with pytest.raises(ConfigurationError):
        Policy.from_data(data)


def test_windows_take_windows_only() -> None:
    with pytest.raises(ConfigurationError, match="Window"):
        Policy(domain=DOMAIN, to_customer_window=timedelta(days=30))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_policy_set_and_show_the_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    monkeypatch.setenv("CT_ALIAS_DOMAIN", DOMAIN)
    assert run("db", "upgrade", "--db", db)[0] == 0
    code, _ = run(
        "policy",
        "set",
        "loja",
        "--db",
        db,
        "--conversation-rules",
        "on",
        "--support-address",
        "Ajuda@Loja.Example.com",
        "--to-customer-window",
        "delivered:30d",
        "--from-customer-window",
        "mediation-opened:12h",
        "--to-customer-per-hour",
        "5",
        "--from-customer-per-hour",
        "20",
        "--unsubscribe-url",
        "https://loja.example.com/unsubscribe/{token}",
    )
    assert code == 0
    shown = json.loads(run("policy", "show", "loja", "--db", db)[1])["loja"]
    assert Policy.from_data(shown) == Policy(domain=DOMAIN, **RULES)  # type: ignore[arg-type]

    # a later set changes only what it names; none clears
    run("policy", "set", "loja", "--db", db, "--to-customer-window", "none")
    run("policy", "set", "loja", "--db", db, "--from-customer-per-hour", "none")
    run("policy", "set", "loja", "--db", db, "--conversation-rules", "off")
    shown = json.loads(run("policy", "show", "loja", "--db", db)[1])["loja"]
    policy = Policy.from_data(shown)
    assert policy.to_customer_window is None
    assert policy.from_customer_per_hour is None
    assert not policy.conversation_rules
    assert policy.to_customer_per_hour == 5
    assert policy.from_customer_window == RULES["from_customer_window"]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--to-customer-window", "delivered"),
        ("--to-customer-window", "delivered:30w"),
        ("--to-customer-window", "delivered:0d"),
        ("--to-customer-per-hour", "0"),
        ("--conversation-rules", "yes"),
    ],
)
def test_bad_rule_flags_are_usage_errors(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run("policy", "set", "loja", "--db", f"sqlite:///{tmp_path / 'ct.db'}", flag, value)
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err


def test_a_bad_unsubscribe_url_flag_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    monkeypatch.setenv("CT_ALIAS_DOMAIN", DOMAIN)
    run("db", "upgrade", "--db", db)
    code, _ = run("policy", "set", "loja", "--db", db, "--unsubscribe-url", "http://x/{token}")
    assert code != 0
    assert "https" in capsys.readouterr().err
