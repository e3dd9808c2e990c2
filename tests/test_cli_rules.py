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
