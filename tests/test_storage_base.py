"""The storage protocol's shared pieces (ct_alias.storage.base)."""

from __future__ import annotations

from datetime import timedelta

from attrs import evolve

from ct_alias import AliasStatus, MemoryStorage, Storage
from ct_alias.errors import ExpiryReason
from ct_alias.storage import stopped_working
from ct_alias.testing import T0, make_alias


def test_stopped_working_says_when_and_why() -> None:
    alias = make_alias()
    assert stopped_working(alias) == (alias.expires_at, ExpiryReason.TTL)
    ended = evolve(alias, status=AliasStatus.ENDED, ends_at=T0 + timedelta(days=1))
    assert stopped_working(ended) == (T0 + timedelta(days=1), ExpiryReason.ENDED)
    late_end = evolve(alias, status=AliasStatus.ENDED, ends_at=alias.expires_at + timedelta(1))
    assert stopped_working(late_end) == (alias.expires_at, ExpiryReason.TTL)
    revoked = evolve(alias, status=AliasStatus.REVOKED, revoked_at=T0 + timedelta(hours=1))
    assert stopped_working(revoked) == (T0 + timedelta(hours=1), ExpiryReason.REVOKED)
    assert stopped_working(evolve(revoked, revoked_at=None)) == (
        alias.created_at,
        ExpiryReason.REVOKED,
    )


def test_the_protocol_is_checkable_at_run_time() -> None:
    assert isinstance(MemoryStorage(), Storage)
    assert not isinstance(object(), Storage)
