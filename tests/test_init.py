"""The package façade: a curated ``__all__``, and an import that stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import ct_alias


def test_all_is_curated_and_importable() -> None:
    assert 20 <= len(ct_alias.__all__) <= 30
    assert len(set(ct_alias.__all__)) == len(ct_alias.__all__)
    for name in ct_alias.__all__:
        assert getattr(ct_alias, name) is not None


def test_importing_ct_alias_loads_no_relay_mail_sqlalchemy_or_aiosmtpd() -> None:
    code = "import json, sys, ct_alias\nprint(json.dumps(sorted(m for m in sys.modules)))\n"
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    heavy = [
        m
        for m in loaded
        if m in ("ct_alias.relay", "ct_alias.mail", "ct_alias.server", "ct_alias.cli")
        or m.startswith(("ct_alias.mail.", "ct_alias.storage.sql", "sqlalchemy", "aiosmtpd"))
    ]
    assert heavy == []
    assert "ct_alias.tracker" in loaded  # the check above sees what the import loads


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Relay", "ct_alias.relay"),
        ("Outcome", "ct_alias.relay"),
        ("AliasCodec", "ct_alias.codec"),
        ("register_strategy", "ct_alias.strategies"),
        ("MissingExtra", "ct_alias.errors"),
        ("Tombstone", "ct_alias.storage.base"),
        ("register_storage_scheme", "ct_alias.storage.registry"),
        ("Rotation", "ct_alias._sealing"),
    ],
)
def test_names_documented_elsewhere_still_import_from_the_package(name: str, module: str) -> None:
    value = getattr(ct_alias, name)
    assert getattr(value, "__module__", None) == module
    assert name not in ct_alias.__all__
    assert name in dir(ct_alias)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        ct_alias.nothing_here  # noqa: B018
