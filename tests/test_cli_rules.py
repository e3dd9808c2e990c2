"""The real ``ct-alias`` command follows its own rules: messages, exit codes, output.

Every test here runs the installed console script in a subprocess, with a
clean environment, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Made with `ct-alias keys generate --count 3`.
SIGNING_KEY = "fxf2hKFwgmllTRZWKnITyKoBinGQh2O5IVLJ3maDJ5Q"
INDEX_KEY = "PLG_cu4CcoUmYDpjNv9FPWbuukunZMTvIwTiu9Q6Cvg"
OTHER_INDEX_KEY = "Jrs0AeykZkBEFN2jL8wGgDKK9VYx6XM2BmCqo7geDgw"
DOMAIN = "ct.example.com"
CT_ALIAS = str(Path(sys.executable).with_name("ct-alias"))


class Shell:
    """Runs ``ct-alias`` with a given environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CT_ALIAS, *argv],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CT_ALIAS_")}


@pytest.fixture
def bare() -> Shell:
    """``ct-alias`` with no configuration at all."""
    return Shell(_clean_environment())


@pytest.fixture
def ct(tmp_path: Path) -> Shell:
    """``ct-alias`` configured through the environment, on an upgraded SQLite file."""
    shell = Shell(
        {
            **_clean_environment(),
            "CT_ALIAS_DB": f"sqlite:///{tmp_path / 'ct.db'}",
            "CT_ALIAS_KEYS": SIGNING_KEY,
            "CT_ALIAS_INDEX_KEY": INDEX_KEY,
            "CT_ALIAS_DOMAIN": DOMAIN,
        }
    )
    assert shell("db", "upgrade").returncode == 0
    return shell


def test_timeline_html(ct: Shell) -> None:
    alias = ct("mask", "maria@example.com.br", "-c", "o<1>").stdout.strip()
    assert ct("unmask", alias, "--reason", "label <b>").returncode == 0
    done = ct("timeline", "o<1>", "--html")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith('<section class="ct-timeline" data-conversation="o&lt;1&gt;">')
    assert "label &lt;b&gt;" in page
    assert "unmask audit" in page
    assert "maria@example.com.br" not in page
    shown = ct("timeline", "o<1>", "--html", "--include-real-addresses").stdout
    assert "maria@example.com.br" in shown
    both = ct("timeline", "o<1>", "--html", "--json")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


# -- errors that say the cause ---------------------------------------------------------


def test_storage_failure_prints_the_cause_on_one_line(bare: Shell) -> None:
    url = "postgresql://postgres:hunter2-secret@127.0.0.1:9/test"
    done = bare("db", "upgrade", "--db", url)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ct-alias: error: storage failed while upgrading the schema: ")
    assert "127.0.0.1" in lines[0]
    assert "port 9" in lines[0]
    assert "Connection refused" in lines[0]
    assert "hunter2-secret" not in done.stderr
    assert "db upgrade" not in lines[0]  # no "run `ct-alias db upgrade`" loop
    verbose = bare("--verbose", "db", "upgrade", "--db", url)
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "hunter2-secret" not in verbose.stderr


def test_missing_schema_says_run_db_upgrade_and_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    shell = Shell(
        {
            **_clean_environment(),
            "CT_ALIAS_KEYS": SIGNING_KEY,
            "CT_ALIAS_INDEX_KEY": INDEX_KEY,
            "CT_ALIAS_DOMAIN": DOMAIN,
        }
    )
    done = shell("mask", "maria@example.com", "-c", "o1", "--db", f"sqlite:///{path}")
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert "`ct-alias db upgrade`" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not path.exists()


def test_wrong_index_key_is_named(ct: Shell) -> None:
    alias = ct("mask", "maria@example.com", "-c", "o1").stdout.strip()
    done = ct("unmask", alias, "--index-key", OTHER_INDEX_KEY)
    assert done.returncode == 1
    assert "--index-key (CT_ALIAS_INDEX_KEY)" in done.stderr
    assert "maria" not in done.stderr
    assert ct("unmask", alias).stdout.strip() == "maria@example.com"


def test_no_index_key_is_said(ct: Shell) -> None:
    done = ct("mask", "maria@example.com", "-c", "o1", CT_ALIAS_INDEX_KEY="")
    assert done.returncode == 0
    assert done.stderr.startswith("ct-alias: warning: no index key (set CT_ALIAS_INDEX_KEY")
    assert "--index-key" in done.stderr
    assert "PublicIndexKeyWarning" not in done.stderr
    assert ct("mask", "maria@example.com", "-c", "o1").stderr == ""
