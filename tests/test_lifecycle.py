"""The lifecycle rules (ct_alias._lifecycle): pure functions from records to changes."""

from __future__ import annotations

from datetime import timedelta

from attrs import evolve

from ct_alias import AliasStatus, OrderEvent, Policy
from ct_alias._lifecycle import Changes, ending, reactivation, retirement, revocation
from ct_alias.testing import T0, make_alias

DOMAIN = "ct.example.com"
ENDS_ON_DELIVERY = Policy(domain=DOMAIN, end_on={OrderEvent.DELIVERED}, grace=timedelta(days=3))


def policy_for(store: str) -> Policy:
    return ENDS_ON_DELIVERY if store == "shop" else Policy(domain=DOMAIN)


def test_ending_picks_the_working_aliases_whose_policy_ends_on_the_event() -> None:
    shop, other = make_alias(store="shop"), make_alias(store="other")
    ended = evolve(make_alias(store="shop"), status=AliasStatus.ENDED, ends_at=T0)
    changes = ending(
        [shop, other, ended], policy_for=policy_for, at=T0, now=T0, event="delivered", grace=None
    )
    assert [c.key for c in changes.changes] == [shop.key]
    (change,) = changes.changes
    assert (change.status, change.ends_at) == (AliasStatus.ENDED, T0 + timedelta(days=3))
    (entry,) = changes.entries
    assert (entry.name, entry.data["ref"], entry.data["by"]) == (
        "alias-ended",
        shop.key,
        "delivered",
    )
    assert shop.address not in str(entry.data)
    assert shop.real_address not in str(entry.data)


def test_ending_without_an_event_ends_every_working_alias_never_past_its_expiry() -> None:
    short = make_alias(store="other", ttl=timedelta(days=1))
    changes = ending(
        [short], policy_for=policy_for, at=T0, now=T0, event=None, grace=timedelta(days=30)
    )
    assert changes.changes[0].ends_at == short.expires_at


def test_reactivation_reopens_only_ended_aliases_until_their_expiry() -> None:
    active = make_alias()
    ended = evolve(make_alias(), status=AliasStatus.ENDED, ends_at=T0)
    revoked = evolve(make_alias(), status=AliasStatus.REVOKED, revoked_at=T0)
    changes = reactivation([active, ended, revoked], now=T0, for_=timedelta(days=365))
    (change,) = changes.changes
    assert (change.key, change.status, change.ends_at) == (
        ended.key,
        AliasStatus.ACTIVE,
        ended.expires_at,
    )
    assert [e.name for e in changes.entries] == ["alias-reactivated"]


def test_revocation_is_nothing_for_a_revoked_alias() -> None:
    alias = make_alias()
    changes = revocation(alias, now=T0, reason="leaked")
    assert changes.changes[0].status is AliasStatus.REVOKED
    assert changes.changes[0].revoked_at == T0
    assert changes.entries[0].data["reason"] == "leaked"
    revoked = evolve(alias, status=AliasStatus.REVOKED, revoked_at=T0)
    assert revocation(revoked, now=T0, reason=None) == Changes()


def test_retirement_always_revokes_and_says_why() -> None:
    revoked = evolve(make_alias(), status=AliasStatus.REVOKED, revoked_at=T0)
    changes = retirement(revoked, now=T0, why="signing key retired")
    assert changes.changes[0].status is AliasStatus.REVOKED
    assert changes.entries[0].data["reason"] == "signing key retired"
