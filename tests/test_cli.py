"""The ct-alias command line: commands, configuration, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ct_alias.cli import main

#: Keys made with `ct-alias keys generate` (public test keys: never use them).
SIGNING_KEY = "jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"
ADDRESS_KEY_A = "SYDx83anjgp3uVAbziKk8rm7TzcgXika5q-aulYZ5Cc"
ADDRESS_KEY_B = "ohxh7rVYws5vFm6dyOUvvH11e5Oayq8EVbDljQQmvlg"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    for name in (
        "CT_ALIAS_DB",
        "CT_ALIAS_KEYS",
        "CT_ALIAS_DOMAIN",
        "CT_ALIAS_INDEX_KEY",
        "CT_ALIAS_STRATEGY",
        "CT_ALIAS_ADDRESS_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CT_ALIAS_DB", f"sqlite:///{db}")
    monkeypatch.setenv("CT_ALIAS_KEYS", "WO2uVQa6PwOX-MEU0j-I5ToNYbwt5AYNxzBVQoFPolY")
    monkeypatch.setenv("CT_ALIAS_DOMAIN", "ct.example.com")
    monkeypatch.setenv("CT_ALIAS_INDEX_KEY", "7tsqvLCaSltb3GM2oY0rU1c8MyT4BTITvwat9Yg9K-4")
    assert run("db", "upgrade")[0] == 0
    return db


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_mask_unmask_timeline(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, alias = run("mask", "Maria@Example.com", "--conversation", "o1")
    assert code == 0
    alias = alias.strip()
    assert alias.endswith("@ct.example.com")
    assert run("mask", "maria@example.com", "-c", "o1")[1].strip() == alias
    assert run("unmask", alias.upper(), "--reason", "support ticket") == (0, "Maria@example.com\n")
    code, text = run("unmask", alias, "--json")
    assert json.loads(text)["realAddress"] == "Maria@example.com"
    code, text = run("timeline", "o1", "--json")
    exported = json.loads(text)
    assert [e["event"] for e in exported["events"]] == ["alias-created", "alias-unmasked"]
    assert "realAddress" not in exported["participants"][0]
    code, text = run("timeline", "o1", "--json", "--include-real-addresses")
    assert json.loads(text)["participants"][0]["realAddress"] == "Maria@example.com"
    code, text = run("timeline", "o1")
    assert code == 0
    assert "alias-unmasked" in text
    assert "Maria@" not in text


def test_simple_strategy_and_roles(env: Path) -> None:
    code, alias = run(
        "mask",
        "vendas@loja.example.com",
        "-c",
        "o1",
        "--role",
        "store",
        "--strategy",
        "simple",
        "--json",
    )
    assert code == 0
    data = json.loads(alias)
    assert data["role"] == "store"
    assert data["aliasMaskType"] == "simple"
    assert data["emailAlias"].startswith("vendas@loja.example.com-")


def test_user_errors_exit_1_with_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("unmask", "1" + "0" * 39 + "@ct.example.com")[0] == 1
    err = capsys.readouterr().err
    assert err.startswith("ct-alias: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert run("mask", "not an address", "-c", "o1")[0] == 1


def test_expired_alias_exits_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an alias of a tracker whose clock is two months ahead is expired for this one
    from datetime import UTC, datetime, timedelta

    from ct_alias import FrozenClock, Policy, Tracker
    from ct_alias.storage.sql import SQLStorage

    past = Tracker(
        storage=SQLStorage(f"sqlite:///{env}"),
        keys=["WO2uVQa6PwOX-MEU0j-I5ToNYbwt5AYNxzBVQoFPolY"],
        default_policy=Policy(domain="ct.example.com"),
        index_key="7tsqvLCaSltb3GM2oY0rU1c8MyT4BTITvwat9Yg9K-4",
        clock=FrozenClock(datetime.now(UTC) - timedelta(days=90)),
    )
    alias = past.mask("maria@example.com", conversation="old").address
    assert run("unmask", alias)[0] == 1
    assert "no longer works (ttl)" in capsys.readouterr().err


def test_missing_keys_and_domain(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CT_ALIAS_KEYS")
    assert run("mask", "maria@example.com", "-c", "o1")[0] == 1
    assert "CT_ALIAS_KEYS" in capsys.readouterr().err
    assert (
        run(
            "mask",
            "maria@example.com",
            "-c",
            "o1",
            "--keys",
            "jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE",
        )[0]
        == 0
    )
    monkeypatch.delenv("CT_ALIAS_DOMAIN")
    assert (
        run(
            "mask",
            "maria@example.com",
            "-c",
            "o1",
            "--keys",
            "jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE",
        )[0]
        == 1
    )
    assert "CT_ALIAS_DOMAIN" in capsys.readouterr().err


def test_bad_usage_exits_2(env: Path) -> None:
    with pytest.raises(SystemExit) as info:
        run("mask")
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        run("no-such-command")
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        run("mask", "a@example.com", "-c", "o", "--role", "boss")
    assert info.value.code == 2


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["mask"],
        ["unmask"],
        ["timeline"],
        ["purge"],
        ["db"],
        ["db", "upgrade"],
        ["serve"],
        ["keys"],
        ["keys", "generate"],
        ["keys", "rotate"],
    ],
)
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(*command, "--help")
    assert info.value.code == 0
    assert "usage: ct-alias" in capsys.readouterr().out


def test_keys_generate() -> None:
    code, text = run("keys", "generate", "--count", "3")
    keys = text.split()
    assert code == 0
    assert len(set(keys)) == 3
    assert all(len(k) >= 43 for k in keys)


def test_purge(env: Path) -> None:
    assert run("mask", "maria@example.com", "-c", "o1")[0] == 0
    assert run("purge", "--older-than-days", "30") == (0, "purged 0 alias(es)\n")


def test_address_keys_and_rotation(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT_ALIAS_ADDRESS_KEYS", ADDRESS_KEY_A)
    alias = run("mask", "maria@example.com", "-c", "o1")[1].strip()
    monkeypatch.setenv("CT_ALIAS_ADDRESS_KEYS", f"{ADDRESS_KEY_A},{ADDRESS_KEY_B}")
    code, text = run("keys", "rotate", "--batch-size", "1")
    assert code == 0
    assert "done: scanned 1, re-sealed 1" in text
    monkeypatch.setenv("CT_ALIAS_ADDRESS_KEYS", ADDRESS_KEY_B)
    assert run("unmask", alias) == (0, "maria@example.com\n")


def test_demo_runs(tmp_path: Path) -> None:
    code, text = run("demo")
    assert code == 0
    for expected in (
        "complex mask",
        "simple mask",
        "250 2.0.0",
        "550 5.1.1",
        "550 5.2.1",
        "550 5.7.1 this sender was blocked in this conversation",
        "sender-blocked",
        "contact-details: contact details in the message: a phone number",
        "time to the store's first reply: 2:00:00; awaiting a reply: no",
        "the store's median reply time: 2:00:00 over 1 answered turn(s)",
        "payment-approved",
        "delivered",
        "the timeline of order",
    ):
        assert expected in text
    code, text = run("demo", "--json")
    assert code == 0
    assert [t["formatVersion"] for t in json.loads(text)] == [1, 1]


def test_missing_sql_extra_names_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "from ct_alias.cli import main\n"
        "sys.exit(main(['mask', 'a@example.com', '-c', 'o', '--keys', "
        f"'{SIGNING_KEY}', '--domain', 'ct.example.com']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'ct-alias[sql]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_console_script_and_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ct_alias", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("ct-alias ")


def test_alias_json_is_the_timeline_participant_shape(env: Path) -> None:
    code, text = run("mask", "maria@example.com", "-c", "o1", "-s", "shop", "--json")
    assert code == 0
    masked = json.loads(text)
    assert (masked.pop("conversation"), masked.pop("store")) == ("o1", "shop")
    exported = json.loads(run("timeline", "o1", "-s", "shop", "--json")[1])
    assert exported["participants"] == [masked]
    assert masked["createdAt"].endswith("Z")
    code, text = run("unmask", masked["emailAlias"], "--json")
    unmasked = json.loads(text)
    assert unmasked.pop("realAddress") == "maria@example.com"
    assert {k: v for k, v in unmasked.items() if k not in ("conversation", "store")} == masked
