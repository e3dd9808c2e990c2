"""storage_from_url is typed so that the documented next call, ``upgrade()``, checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from ct_alias import ConfigurationError, MemoryStorage
from ct_alias.storage.registry import register_storage_scheme, storage_from_url

DOCUMENTED = """\
    import os

    from ct_alias import Policy, Tracker, storage_from_url

    storage = storage_from_url(os.environ.get("CT_ALIAS_DB", "sqlite:///ct_alias.db"))
    version: int = storage.upgrade()
    tracker = Tracker(
        storage=storage,
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain="ct.example.com"),
        index_key="DpaqaB5bYRFI0Jwol-fiFjLkjIjsuOKjwtjyCXICmFE",
    )
"""


def _mypy(source: str, tmp_path: Path) -> tuple[str, int]:
    path = tmp_path / "example.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    out, err, status = mypy_api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(path)])
    return out + err, status


def test_the_documented_upgrade_call_checks_under_mypy_strict(tmp_path: Path) -> None:
    # One mistake on purpose, on the last line: it proves mypy looked at the call.
    out, status = _mypy(DOCUMENTED + "    storage.upgrade(42)\n", tmp_path)
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert errors[0].startswith(f"{tmp_path / 'example.py'}:13: error: Too many arguments"), out


def test_every_storage_from_a_url_can_upgrade(tmp_path: Path) -> None:
    memory = storage_from_url("memory://")
    assert isinstance(memory, MemoryStorage)
    assert memory.upgrade() == 0
    sql = storage_from_url(f"sqlite:///{tmp_path / 'ct.db'}")
    assert sql.upgrade() >= 1
    assert sql.upgrade() == sql.upgrade()


class _NoSchema:
    """A third-party storage that forgot upgrade()."""


def test_a_factory_without_upgrade_is_refused() -> None:
    register_storage_scheme(
        "no-schema-t17",
        lambda url, /, **options: _NoSchema(),  # type: ignore[arg-type]
        replace=True,
    )
    with pytest.raises(ConfigurationError, match=r"no upgrade\(\) method: give _NoSchema one"):
        storage_from_url("no-schema-t17://x")
