"""The exception hierarchy: builtins a caller expects, structured fields, safe messages."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from ct_alias import (
    ConfigurationError,
    CtAliasError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    InvalidAddress,
    MalformedAlias,
    MissingExtra,
    RevokedAlias,
    StorageError,
    UnknownAlias,
)


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
