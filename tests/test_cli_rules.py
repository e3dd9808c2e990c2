"""The real ``ct-alias`` command follows its own rules: messages, exit codes, output.

Every test here runs the installed console script in a subprocess, with a
clean environment, as a user would.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from .sql_servers import postgres_schema

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


# -- the command line's own rules -----------------------------------------------------

#: Python parameter names the library uses; the command line must never show them.
PYTHON_NAMES = re.compile(
    r"\b(older_than|batch_size|address_keys|index_key|rotate_address_keys|include_real)\b"
)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["timeline", "o1", "--limit", "0"], "--limit"),
        (["timeline", "o1", "--after", "not-a-cursor"], "--after"),
        (["timeline", ""], "conversation"),
        (["purge", "--older-than-days", "-1"], "--older-than-days"),
        (["purge", "--older-than-days", "ten"], "--older-than-days"),
        (["keys", "generate", "--count", "0"], "--count"),
        (["keys", "rotate", "--batch-size", "0"], "--batch-size"),
        (["mask", "maria@example.com", "-c", ""], "--conversation"),
        (["mask", "maria@example.com", "-c", "o1", "--store", ""], "--store"),
        (["mask", "maria@example.com", "-c", "o1", "--keys", ""], "--keys"),
        (["mask", "maria@example.com", "-c", "o1", "--keys", "a,,b"], "--keys"),
        (["mask", "maria@example.com", "-c", "o1", "--index-key", ""], "--index-key"),
        (["mask", "maria@example.com", "-c", "o1", "--domain", "bad domain"], "--domain"),
        (["mask", "maria@example.com", "-c", "o1", "--strategy", "nope"], "--strategy"),
        (["mask", "maria@example.com", "-c", "o1", "--db", ""], "--db"),
        (["unmask", "x@ct.example.com", "--reason", " "], "--reason"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_flag(ct: Shell, argv: list[str], flag: str) -> None:
    done = ct(*argv)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ct-alias {argv[0]}"), last
    assert flag in last, last
    assert not PYTHON_NAMES.search(done.stderr), done.stderr
    assert done.stdout == ""


def test_keys_generate_prints_what_it_is_asked(bare: Shell) -> None:
    done = bare("keys", "generate", "--count", "3")
    keys = done.stdout.split()
    assert done.returncode == 0
    assert len(set(keys)) == 3
    assert all(len(key) >= 43 for key in keys)


def test_missing_settings_name_flags_and_variables(ct: Shell) -> None:
    rotate = ct("keys", "rotate")
    assert rotate.returncode == 1
    assert "--address-keys" in rotate.stderr
    assert "CT_ALIAS_ADDRESS_KEYS" in rotate.stderr
    sealing = ct(
        "mask", "maria@example.com", "-c", "o1", "--address-keys", SIGNING_KEY,
        CT_ALIAS_INDEX_KEY="",
    )  # fmt: skip
    assert sealing.returncode == 1
    assert "--address-keys (CT_ALIAS_ADDRESS_KEYS) need --index-key (CT_ALIAS_INDEX_KEY)" in (
        sealing.stderr
    )
    no_keys = ct("mask", "maria@example.com", "-c", "o1", CT_ALIAS_KEYS="")
    assert no_keys.returncode == 1
    assert "CT_ALIAS_KEYS" in no_keys.stderr
    assert "--keys" in no_keys.stderr
    for done in (rotate, sealing, no_keys):
        assert not PYTHON_NAMES.search(done.stderr), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr


def test_unknown_conversation_exits_1(ct: Shell) -> None:
    done = ct("timeline", "no-such-order")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "ct-alias: error: no conversation 'no-such-order' in this storage (--db, CT_ALIAS_DB): "
        "nothing was masked or recorded for it"
    )
    assert ct("mask", "maria@example.com", "-c", "o1").returncode == 0
    assert ct("timeline", "o1").returncode == 0


COMMANDS = [
    ["demo"],
    ["mask"],
    ["unmask"],
    ["timeline"],
    ["purge"],
    ["db", "upgrade"],
    ["serve"],
    ["keys", "generate"],
    ["keys", "rotate"],
]


def _option_help(text: str) -> dict[str, str]:
    """Each option of ``--help`` output and its help text (continuation lines joined)."""
    options: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if re.match(r"^  -", line):
            flags, _, rest = line.strip().partition("  ")
            current = flags.split(",")[-1].split()[0]
            options[current] = rest.strip()
        elif current is not None and line.startswith("    ") and line.strip():
            options[current] += " " + line.strip()
        else:
            current = None
    return options


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_flag_has_help_and_its_default(bare: Shell, command: list[str]) -> None:
    done = bare(*command, "--help", COLUMNS="200")
    assert done.returncode == 0
    options = _option_help(done.stdout)
    assert options, done.stdout
    for flag, text in options.items():
        if flag == "--help":
            continue
        assert text, f"{' '.join(command)} {flag} has no help"
        assert "default" in text or "required" in text, f"{' '.join(command)} {flag}: {text}"


def test_db_upgrade_hides_only_a_password(tmp_path: Path, bare: Shell) -> None:
    url = f"sqlite:///{tmp_path / 'ct.db'}"
    done = bare("db", "upgrade", "--db", url)
    assert done.stdout == f"database schema is up to date: {url}\n"
    done = bare("db", "upgrade", "--db", "memory://")
    assert done.stdout == "database schema is up to date: memory://\n"


def _in_a_terminal(shell: Shell, *argv: str) -> tuple[int, str]:
    """Run ``ct-alias`` with its standard output on a pseudo-terminal; return (status, output)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [CT_ALIAS, *argv], stdout=slave, stderr=subprocess.PIPE, env=shell.env, text=False
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    status = process.wait(timeout=120)
    assert process.stderr is not None
    process.stderr.close()
    return status, b"".join(chunks).decode()


def test_purge_and_rotate_show_progress_with_a_total_in_a_terminal(ct: Shell) -> None:
    first, second = SIGNING_KEY, OTHER_INDEX_KEY  # any generated keys serve as address keys
    for n in range(3):
        done = ct("mask", f"person{n}@example.com", "-c", "o1", "--address-keys", first)
        assert done.returncode == 0, done.stderr
    status, output = _in_a_terminal(ct, "keys", "rotate", "--address-keys", f"{first},{second}")
    assert status == 0, output
    assert "re-sealing: 3/3 (100%), 3 re-sealed" in output
    assert "done: scanned 3, re-sealed 3" in output
    piped = ct("keys", "rotate", "--address-keys", f"{first},{second}")
    assert piped.stdout == (
        "done: scanned 3, re-sealed 0; the older address keys can now be removed\n"
    )
    status, output = _in_a_terminal(ct, "purge", "--address-keys", second)
    assert status == 0, output
    assert "checking: 3/3 (100%), 0 to purge" in output
    assert "purged 0 alias(es)" in output
    assert ct("purge", "--address-keys", second).stdout == "purged 0 alias(es)\n"


def test_demo_ends_with_three_next_steps_that_work(tmp_path: Path, bare: Shell) -> None:
    done = bare("demo")
    assert done.returncode == 0, done.stderr
    last = done.stdout.rstrip("\n").splitlines()[-3:]
    assert [line.split(":")[0] for line in last] == ["next", "next", "next"]
    assert "'Seu pedido foi bloqueado: clique aqui' [unverified sender]" in done.stdout
    assert "ct-alias keys generate" in last[0]
    assert "ct-alias db upgrade && ct-alias mask maria@example.com -c order-1" in last[1]
    assert "ct-alias timeline order-1 --html > order.html" in last[2]
    # Follow them, in a fresh directory.
    env = {
        **bare.env,
        "CT_ALIAS_KEYS": bare("keys", "generate").stdout.strip(),
        "CT_ALIAS_INDEX_KEY": bare("keys", "generate").stdout.strip(),
        "CT_ALIAS_DOMAIN": "ct.example.com",
    }
    for argv in (
        ["db", "upgrade"],
        ["mask", "maria@example.com", "-c", "order-1"],
        ["timeline", "order-1", "--html"],
    ):
        step = subprocess.run(
            [CT_ALIAS, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert step.returncode == 0, step.stderr
        assert step.stderr == ""
    assert step.stdout.startswith('<section class="ct-timeline"')
    assert (tmp_path / "ct_alias.db").exists()


def test_db_upgrade_hides_a_password(bare: Shell) -> None:
    with postgres_schema("t17") as (url, schema):
        secret = "hunter2-not-needed"
        with_password = (
            make_url(url)
            .set(drivername="postgresql", password=secret)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        done = bare("db", "upgrade", "--db", with_password)
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout
        assert done.stdout.startswith("database schema is up to date: postgresql://postgres:***@")
