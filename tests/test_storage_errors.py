"""Errors that say the cause: the driver's words without secrets, a missing schema, a wrong key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ct_alias import MemoryStorage, Policy, StorageError, Tracker, UnknownAlias
from ct_alias.errors import PublicIndexKeyWarning, driver_message
from ct_alias.storage.sql import SCHEMA_VERSION, SQLStorage

from .sql_servers import MYSQL_URL, POSTGRES_URL

# Made with `ct-alias keys generate --count 3`.
SIGNING_KEY = "XIUp9Ueq2o23vnB5XeS0do4IqeJViL2XTYFdJ3Cmgi4"
INDEX_KEY = "9K1AivZBcXNi46QACdNud-lPQIa-iwqCCA101AHs-zw"
OTHER_INDEX_KEY = "JdoLRl97xDLtLx6IVrMrKOa_y0sSbEXDcXfQvXCKVWU"
POLICY = Policy(domain="ct.example.com")
#: A port nothing listens on (the discard port; closed on the test machines).
CLOSED_PORT = 9
DUPLICATE = (
    'duplicate key value violates unique constraint "u" DETAIL: Key (real)=(maria@ex.com) '
    "already exists."
)


def _tracker(storage: object, index_key: str = INDEX_KEY) -> Tracker:
    return Tracker(
        storage=storage,  # type: ignore[arg-type]
        keys=[SIGNING_KEY],
        default_policy=POLICY,
        index_key=index_key,
    )


@pytest.mark.parametrize(
    ("raw", "kept", "removed"),
    [
        (
            'connection to server at "db.internal", port 5999 failed: Connection refused',
            ['"db.internal"', "port 5999", "Connection refused"],
            [],
        ),
        (
            "could not connect to postgresql://shop:hunter2@db.internal:5432/orders",
            ["db.internal:5432/orders", "***@"],
            ["hunter2", "shop:"],
        ),
        ("login failed: password=hunter2 host=db", ["host=db", "password=***"], ["hunter2"]),
        (
            DUPLICATE,
            ["Key (real)=(...) already exists"],
            ["maria@ex.com"],
        ),
        ("value 'Maria.Silva@Example.com.br' is bad", ["<address>"], ["Maria.Silva", "Example"]),
        ('database "shop" does not exist', ['database "shop" does not exist'], []),
        ("no such table: ct_alias_aliases", ["no such table: ct_alias_aliases"], []),
    ],
)
def test_driver_message_keeps_the_cause_and_drops_secrets(
    raw: str, kept: list[str], removed: list[str]
) -> None:
    text = driver_message(ConnectionError(raw))
    assert text.startswith("ConnectionError: ")
    for words in kept:
        assert words in text
    for secret in removed:
        assert secret not in text


def test_driver_message_is_one_bounded_line() -> None:
    text = driver_message(OSError("first line\n\tsecond line " + "x" * 1000))
    assert "\n" not in text
    assert "first line second line" in text
    assert len(text) <= len("OSError: ") + 300
    assert driver_message(OSError()) == "OSError"


def test_mask_before_upgrade_says_so_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "never-created.db"
    storage = SQLStorage(f"sqlite:///{path}")
    with pytest.raises(StorageError) as caught:
        _tracker(storage).mask("maria@example.com", conversation="o1")
    assert caught.value.schema_missing
    assert not caught.value.transient
    assert "run `upgrade()`" in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert storage.schema_version() == 0
    assert not path.exists()
    assert storage.upgrade() == SCHEMA_VERSION
    assert path.exists()
    assert _tracker(storage).mask("maria@example.com", conversation="o1").address


def test_a_file_without_tables_says_no_such_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    storage = SQLStorage(f"sqlite:///{path}")
    with pytest.raises(StorageError) as caught:
        _tracker(storage).timeline("o1")
    assert caught.value.schema_missing
    assert "no such table" in str(caught.value)
    assert "run `upgrade()`" in str(caught.value)
    storage.close()


def test_other_failures_are_not_a_missing_schema(tmp_path: Path) -> None:
    storage = SQLStorage(f"sqlite:///{tmp_path / 'no-such-directory' / 'x.db'}")
    with pytest.raises(StorageError) as caught:
        storage.upgrade()
    assert not caught.value.schema_missing
    assert "unable to open database file" in str(caught.value)
    assert "upgrade()`" not in str(caught.value)


def _with_port(
    url: str, port: int, *, password: str | None = None, database: str | None = None
) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(port=port)
    if password is not None:
        parsed = parsed.set(password=password)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.mark.parametrize("server", [POSTGRES_URL, MYSQL_URL], ids=["postgresql", "mariadb"])
def test_unreachable_server_names_host_port_and_refusal(server: str) -> None:
    url = _with_port(server, CLOSED_PORT, password="hunter2-secret")
    storage = SQLStorage(url, connect_args={"connect_timeout": 5})
    with pytest.raises(StorageError) as caught:
        storage.upgrade()
    text = str(caught.value)
    assert "127.0.0.1" in text
    assert f"127.0.0.1:{CLOSED_PORT}" in text or f"port {CLOSED_PORT}" in text
    assert "refused" in text.lower()
    assert "hunter2-secret" not in text
    assert caught.value.transient
    assert not caught.value.schema_missing


@pytest.mark.parametrize(
    ("server", "words"),
    [(POSTGRES_URL, 'database "ct_no_such_db" does not exist'), (MYSQL_URL, "Unknown database")],
    ids=["postgresql", "mariadb"],
)
def test_missing_database_says_so(server: str, words: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(server).set(database="ct_no_such_db")
    storage = SQLStorage(url, connect_args={"connect_timeout": 5})
    try:
        with pytest.raises(StorageError) as caught:
            storage.upgrade()
    finally:
        storage.close()
    assert words in str(caught.value)


@pytest.mark.parametrize("server", [POSTGRES_URL, MYSQL_URL], ids=["postgresql", "mariadb"])
def test_missing_tables_on_a_server_say_run_upgrade(server: str) -> None:
    storage = SQLStorage(server, prefix="ct_never_upgraded_", connect_args={"connect_timeout": 5})
    try:
        with pytest.raises(StorageError) as caught:
            storage.get("0" * 32)
    finally:
        storage.close()
    assert caught.value.schema_missing
    assert "run `upgrade()`" in str(caught.value)
    assert "ct_never_upgraded_aliases" in str(caught.value)


def test_unknown_alias_hints_at_the_index_key() -> None:
    storage = MemoryStorage()
    alias = _tracker(storage).mask("maria@example.com", conversation="o1")
    with pytest.raises(UnknownAlias) as caught:
        _tracker(storage, OTHER_INDEX_KEY).unmask(alias.address)
    assert "index key it was stored with" in str(caught.value)
    assert "maria" not in str(caught.value)


def test_leaving_the_index_key_out_warns() -> None:
    with pytest.warns(PublicIndexKeyWarning, match="no index_key"):
        Tracker(storage=MemoryStorage(), keys=[SIGNING_KEY], default_policy=POLICY)
    assert issubclass(PublicIndexKeyWarning, UserWarning)
