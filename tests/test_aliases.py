"""The alias record: its states, in time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from ct_alias import (
    AliasStatus,
    ExpiredAlias,
    ExpiryReason,
    FrozenClock,
    MemoryStorage,
    RevokedAlias,
    Tracker,
)

from .hostile import START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


def test_status_at_and_check_usable_cover_every_state(tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1")
    later = alias.created_at + timedelta(days=1)
    assert alias.status_at(later) is AliasStatus.ACTIVE
    assert alias.status_at(alias.expires_at) is AliasStatus.EXPIRED
    with pytest.raises(ExpiredAlias) as info:
        alias.check_usable(alias.expires_at)
    assert (info.value.reason, info.value.expired_at) == (ExpiryReason.TTL, alias.expires_at)
    ended = evolve(alias, status=AliasStatus.ENDED, ends_at=later)
    assert ended.status_at(later - timedelta(seconds=1)) is AliasStatus.ENDED
    assert ended.status_at(later) is AliasStatus.ENDED
    with pytest.raises(ExpiredAlias) as info:
        ended.check_usable(later)
    assert info.value.reason is ExpiryReason.ENDED
    revoked = evolve(alias, status=AliasStatus.REVOKED, revoked_at=later)
    assert revoked.status_at(later) is AliasStatus.REVOKED
    assert not revoked.usable_at(later)
    with pytest.raises(RevokedAlias) as revoked_info:
        revoked.check_usable(later)
    assert revoked_info.value.expired_at == later
    # a revoked record without a time reports its expiry
    with pytest.raises(RevokedAlias) as revoked_info:
        evolve(revoked, revoked_at=None).check_usable(later)
    assert revoked_info.value.expired_at == alias.expires_at
