"""The storage contract: the behaviour every storage backend must have (needs pytest)."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from attrs import evolve

from ..aliases import Alias, AliasStatus, Role
from ..errors import AliasCollision, ExpiryReason
from ..storage.base import (
    AliasChange,
    EntryCount,
    Erasure,
    ErasureStorage,
    RuleScan,
    Sealed,
    Storage,
    Tombstone,
)
from ..timeline import AliasEvent, EntryKind, OrderEvent, TimelineEntry
from ._helpers import T0, race

__all__ = ["StorageContract", "make_alias", "make_entry"]

T = TypeVar("T")


def _hex() -> str:
    return secrets.token_hex(16)


def make_alias(
    *,
    conversation: str = "order-1",
    store: str = "shop",
    role: Role = Role.CUSTOMER,
    slot: str | None = None,
    created_at: datetime = T0,
    ttl: timedelta = timedelta(days=60),
    **changes: Any,
) -> Alias:
    """A valid alias record with random keys, as the tracker would hand a store."""
    alias = Alias(
        address=f"1{secrets.token_hex(19)[:39]}@ct.example.com",
        real_address=f"buyer.{secrets.token_hex(4)}@example.com",
        conversation=conversation,
        store=store,
        role=role,
        strategy="complex",
        created_at=created_at,
        expires_at=(created_at + ttl).replace(microsecond=0),
        key=_hex(),
        slot=slot or _hex(),
    )
    return evolve(alias, **changes) if changes else alias


def _create(storage: Storage, candidate: Callable[[], Alias]) -> tuple[Alias, bool]:
    return storage.get_or_create(candidate(), now=T0)


def make_entry(
    conversation: str = "order-1",
    name: str = OrderEvent.INVOICED.value,
    *,
    store: str = "shop",
    at: datetime = T0,
    kind: EntryKind = EntryKind.EVENT,
    dedup_key: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """A timeline entry that is not stored yet."""
    return TimelineEntry(conversation, kind, name, at, data or {"n": 1}, dedup_key, store=store)


class StorageContract:
    """The behaviour every :class:`~ct_alias.storage.Storage` must have.

    Subclass it (as ``Test…``) and override the ``storage`` fixture. The
    erasure tests run when the storage implements
    :class:`~ct_alias.storage.ErasureStorage` (optional), and are skipped,
    saying so, when it does not.
    """

    #: Threads used by the concurrency tests.
    threads = 8
    #: How many times each race is run (a racy backend can win a single run by luck).
    race_rounds = 20

    @pytest.fixture
    def storage(self, request: pytest.FixtureRequest) -> Storage:
        """Override: return (or yield) a fresh, empty storage, and clean it up afterwards.

        A subclass that overrides ``store`` (this fixture's former name)
        still works, with a :class:`DeprecationWarning`.
        """
        if type(self).store is not StorageContract.store:
            warnings.warn(
                "the StorageContract fixture `store` is deprecated: name it `storage`",
                DeprecationWarning,
                stacklevel=2,
            )
            storage: Storage = request.getfixturevalue("store")
            return storage
        raise NotImplementedError("a StorageContract subclass must provide a `storage` fixture")

    @pytest.fixture
    def store(self) -> Storage:
        """Deprecated name of :meth:`storage`: override that one."""
        raise NotImplementedError("a StorageContract subclass must provide a `storage` fixture")

    # -- get-or-create -------------------------------------------------------

    def test_is_an_alias_store(self, storage: Storage) -> None:
        """Is an alias storage."""
        assert isinstance(storage, Storage)

    def test_creates_and_gets(self, storage: Storage) -> None:
        """Creates and gets."""
        alias = make_alias()
        stored, created = storage.get_or_create(alias, now=T0)
        assert created
        assert stored == alias
        assert storage.get(alias.key) == alias
        assert storage.get(_hex()) is None

    def test_get_or_create_is_idempotent(self, storage: Storage) -> None:
        """Get or create is idempotent."""
        first = make_alias()
        storage.get_or_create(first, now=T0)
        second = make_alias(slot=first.slot)
        again, created = storage.get_or_create(second, now=T0 + timedelta(days=1))
        assert not created
        assert again == first
        assert storage.get(second.key) is None

    def test_unusable_alias_is_replaced_in_its_slot(self, storage: Storage) -> None:
        """Unusable alias is replaced in its slot."""
        first = make_alias(ttl=timedelta(days=1))
        storage.get_or_create(first, now=T0)
        later = T0 + timedelta(days=2)
        second = make_alias(slot=first.slot, created_at=later)
        stored, created = storage.get_or_create(second, now=later)
        assert created
        assert stored == second
        old = storage.get(first.key)
        assert isinstance(old, Alias)
        assert old.slot is None
        assert storage.get_or_create(make_alias(slot=first.slot), now=later) == (second, False)

    def test_revoked_alias_is_replaced_in_its_slot(self, storage: Storage) -> None:
        """Revoked alias is replaced in its slot."""
        first = make_alias()
        storage.get_or_create(first, now=T0)
        storage.update([AliasChange(first.key, AliasStatus.REVOKED, None, T0)])
        second = make_alias(slot=first.slot)
        assert storage.get_or_create(second, now=T0 + timedelta(seconds=1)) == (second, True)

    def test_key_collision(self, storage: Storage) -> None:
        """Key collision."""
        first = make_alias()
        storage.get_or_create(first, now=T0)
        with pytest.raises(AliasCollision):
            storage.get_or_create(make_alias(key=first.key), now=T0)
        assert storage.get(first.key) == first

    def test_creation_entries_are_stored_with_the_alias(self, storage: Storage) -> None:
        """Creation entries are stored with the alias."""
        alias = make_alias()
        entry = make_entry(name=AliasEvent.CREATED.value, data={"ref": alias.key})
        storage.get_or_create(alias, now=T0, entries=[entry])
        (stored,) = storage.entries("order-1", store="shop")
        assert stored.data == {"ref": alias.key}
        storage.get_or_create(make_alias(slot=alias.slot), now=T0, entries=[entry])
        assert (
            len(storage.entries("order-1", store="shop")) == 1
        )  # not created: entries not written

    def test_concurrent_get_or_create_yields_one_alias(self, storage: Storage) -> None:
        """Concurrent get-or-create yields one alias, in every one of many rounds.

        Each round releases :attr:`threads` threads together with a barrier;
        a backend whose get-or-create is racy loses some round.
        """
        for round_ in range(self.race_rounds):
            candidate = partial(make_alias, slot=_hex(), conversation=f"race-{round_}")
            work = partial(_create, storage, candidate)
            results = race(self.threads, work)
            assert len({alias.key for alias, _ in results}) == 1, f"round {round_}"
            assert sum(created for _, created in results) == 1, f"round {round_}"
            assert len(storage.aliases(f"race-{round_}", store="shop")) == 1, f"round {round_}"

    def test_datetimes_are_aware_utc(self, storage: Storage) -> None:
        """Datetimes are aware utc."""
        alias = make_alias(ends_at=T0 + timedelta(days=3), revoked_at=T0 + timedelta(days=4))
        storage.get_or_create(alias, now=T0)
        stored = storage.get(alias.key)
        assert isinstance(stored, Alias)
        for moment in (stored.created_at, stored.expires_at, stored.ends_at, stored.revoked_at):
            assert moment is not None
            assert moment.utcoffset() == timedelta(0)
        assert stored == alias  # microseconds kept

    def test_long_and_unicode_values(self, storage: Storage) -> None:
        """Long and unicode values."""
        alias = make_alias(
            conversation="c" * 254 + "é",
            store="s" * 63 + "ü",
            address="x" * 60 + "@" + "d" * 193,
            real_address='"José Ñ"@' + "e" * 240 + ".com",
        )
        storage.get_or_create(alias, now=T0)
        assert storage.get(alias.key) == alias
        assert storage.aliases(alias.conversation, store=alias.store) == [alias]

    def test_isolation_between_stores_and_conversations(self, storage: Storage) -> None:
        """Isolation between stores and conversations."""
        a = make_alias(store="shop-a")
        b = make_alias(store="shop-b")
        c = make_alias(conversation="order-2")
        for alias in (a, b, c):
            assert storage.get_or_create(alias, now=T0)[1]
        assert storage.aliases("order-1", store="shop-a") == [a]
        assert storage.aliases("order-1", store="shop-b") == [b]
        assert storage.aliases("order-1", store="shop") == []
        assert storage.aliases("order-2", store="shop") == [c]
        assert storage.aliases("order-3", store="shop") == []

    def test_timelines_are_per_store(self, storage: Storage) -> None:
        """Two stores' conversations with the same id keep apart, duplicates included."""
        a, new_a = storage.append(make_entry(store="shop-a", dedup_key="mid:1", data={"s": "a"}))
        b, new_b = storage.append(make_entry(store="shop-b", dedup_key="mid:1", data={"s": "b"}))
        assert new_a
        assert new_b
        assert (a.store, b.store) == ("shop-a", "shop-b")
        assert storage.entries("order-1", store="shop-a") == [a]
        assert storage.entries("order-1", store="shop-b") == [b]
        assert storage.entries("order-1", store="shop") == []
        again, new_again = storage.append(make_entry(store="shop-b", dedup_key="mid:1"))
        assert not new_again
        assert again == b

    def test_aliases_are_listed_oldest_first(self, storage: Storage) -> None:
        """Aliases are listed oldest first."""
        made = [make_alias(created_at=T0 + timedelta(seconds=i)) for i in (3, 1, 2)]
        for alias in made:
            storage.get_or_create(alias, now=T0)
        listed = storage.aliases("order-1", store="shop")
        assert [a.created_at for a in listed] == sorted(a.created_at for a in made)

    # -- lifecycle -----------------------------------------------------------

    def test_update_stores_every_field_and_keeps_the_rest(self, storage: Storage) -> None:
        """Each change's status, ``ends_at`` and ``revoked_at`` are stored; nothing else moves."""
        alias = make_alias(ends_at=T0 + timedelta(days=9), status=AliasStatus.ENDED)
        storage.get_or_create(alias, now=T0)
        steps = [
            AliasChange(alias.key, AliasStatus.ACTIVE, None),
            AliasChange(alias.key, AliasStatus.ENDED, T0 + timedelta(days=2)),
            AliasChange(alias.key, AliasStatus.REVOKED, T0 + timedelta(days=2), T0),
            AliasChange(alias.key, AliasStatus.REVOKED, None, T0 + timedelta(hours=1)),
        ]
        for change in steps:
            expected = evolve(
                alias, status=change.status, ends_at=change.ends_at, revoked_at=change.revoked_at
            )
            changed, _ = storage.update([change])
            assert changed == [expected], change
            assert storage.get(alias.key) == expected, change
            assert storage.aliases(alias.conversation, store=alias.store) == [expected], change

    def test_update_changes_and_entries(self, storage: Storage) -> None:
        """Update changes and entries."""
        a, b = make_alias(), make_alias(role=Role.STORE)
        for alias in (a, b):
            storage.get_or_create(alias, now=T0)
        ends = T0 + timedelta(days=2)
        changes = [
            AliasChange(a.key, AliasStatus.ENDED, ends),
            AliasChange(_hex(), AliasStatus.ENDED, ends),  # unknown: skipped
        ]
        changed, entries = storage.update(changes, entries=[make_entry(), make_entry()])
        assert changed == [evolve(a, status=AliasStatus.ENDED, ends_at=ends)]
        assert storage.get(a.key) == changed[0]
        assert storage.get(b.key) == b
        assert [e.seq is not None for e in entries] == [True, True]
        assert len(storage.entries("order-1", store="shop")) == 2
        revoked = T0 + timedelta(days=1)
        changed, _ = storage.update([AliasChange(b.key, AliasStatus.REVOKED, None, revoked)])
        assert changed[0].revoked_at == revoked
        assert changed[0].status is AliasStatus.REVOKED
        assert storage.update([]) == ([], [])

    # -- purge -----------------------------------------------------------------

    def test_purge_leaves_tombstones(self, storage: Storage) -> None:
        """Purge leaves tombstones."""
        expired = make_alias(ttl=timedelta(days=1))
        ended = make_alias(ends_at=T0 + timedelta(days=2), status=AliasStatus.ENDED)
        revoked = make_alias(status=AliasStatus.REVOKED, revoked_at=T0 + timedelta(hours=1))
        in_grace = make_alias(ends_at=T0 + timedelta(days=30), status=AliasStatus.ENDED)
        active = make_alias()
        for alias in (expired, ended, revoked, in_grace, active):
            storage.get_or_create(alias, now=T0)
        now = T0 + timedelta(days=10)
        assert storage.purge(before=now, now=now) == 3
        assert storage.purge(before=now, now=now) == 0
        expected = {
            expired.key: (expired.expires_at, ExpiryReason.TTL),
            ended.key: (ended.ends_at, ExpiryReason.ENDED),
            revoked.key: (revoked.revoked_at, ExpiryReason.REVOKED),
        }
        for key, (when, reason) in expected.items():
            tomb = storage.get(key)
            assert isinstance(tomb, Tombstone), key
            assert (tomb.expired_at, tomb.reason, tomb.purged_at) == (when, reason, now)
            assert tomb.conversation == "order-1"
            assert tomb.key == key
        assert storage.get(in_grace.key) == in_grace
        assert storage.get(active.key) == active
        assert {a.key for a in storage.aliases("order-1", store="shop")} == {
            in_grace.key,
            active.key,
        }

    def test_purge_respects_before(self, storage: Storage) -> None:
        """Purge respects before."""
        alias = make_alias(ttl=timedelta(days=1))
        storage.get_or_create(alias, now=T0)
        now = T0 + timedelta(days=5)
        assert storage.purge(before=alias.expires_at, now=now) == 0
        assert storage.purge(before=alias.expires_at + timedelta(seconds=1), now=now) == 1

    def test_purged_slot_takes_a_new_alias_and_the_key_stays_taken(self, storage: Storage) -> None:
        """Purged slot takes a new alias and the key stays taken."""
        old = make_alias(ttl=timedelta(days=1))
        storage.get_or_create(old, now=T0)
        now = T0 + timedelta(days=5)
        storage.purge(before=now, now=now)
        fresh = make_alias(slot=old.slot, created_at=now)
        assert storage.get_or_create(fresh, now=now) == (fresh, True)
        with pytest.raises(AliasCollision):
            storage.get_or_create(make_alias(key=old.key), now=now)
        assert storage.update([AliasChange(old.key, AliasStatus.ACTIVE, None)]) == ([], [])

    # -- timeline ------------------------------------------------------------

    def test_append_assigns_sequence(self, storage: Storage) -> None:
        """Append assigns sequence."""
        first, new = storage.append(make_entry())
        assert new
        second, _ = storage.append(make_entry())
        assert first.seq is not None
        assert second.seq is not None
        assert second.seq > first.seq
        assert storage.entries("order-1", store="shop") == [first, second]

    def test_entries_round_trip(self, storage: Storage) -> None:
        """Entries round trip."""
        data = {
            "subject": "Pedido faturado ✓",
            "to": [{"ref": "k", "name": "Zé"}],
            "n": 1.5,
            "none": None,
            "flag": True,
            "nested": {"list": [1, "two"]},
        }
        entry = make_entry(kind=EntryKind.MESSAGE, name="inbound", data=data, dedup_key="mid:x")
        stored, _ = storage.append(entry)
        assert storage.entries("order-1", store="shop") == [stored]
        assert stored == evolve(entry, seq=stored.seq)
        assert stored.at.utcoffset() == timedelta(0)

    def test_duplicates_are_recorded_once(self, storage: Storage) -> None:
        """Duplicates are recorded once."""
        first, new = storage.append(make_entry(dedup_key="mid:1"))
        again, new_again = storage.append(make_entry(dedup_key="mid:1", data={"other": 1}))
        assert new
        assert not new_again
        assert again == first
        other_conversation, new_other = storage.append(make_entry("order-2", dedup_key="mid:1"))
        assert new_other
        assert other_conversation.conversation == "order-2"
        assert len(storage.entries("order-1", store="shop")) == 1

    def test_concurrent_duplicates_are_recorded_once(self, storage: Storage) -> None:
        """Concurrent duplicates are recorded once."""
        results = race(self.threads, lambda: storage.append(make_entry(dedup_key="mid:c")))
        assert sum(new for _, new in results) == 1
        assert len({entry.seq for entry, _ in results}) == 1
        assert len(storage.entries("order-1", store="shop")) == 1

    def test_entries_are_ordered_by_time_then_sequence(self, storage: Storage) -> None:
        """Entries are ordered by time then sequence."""
        late = storage.append(make_entry(at=T0 + timedelta(hours=1), data={"i": 0}))[0]
        a = storage.append(make_entry(at=T0, data={"i": 1}))[0]
        b = storage.append(make_entry(at=T0, data={"i": 2}))[0]
        assert storage.entries("order-1", store="shop") == [a, b, late]

    def test_pagination(self, storage: Storage) -> None:
        """Pagination."""
        stored = [
            storage.append(make_entry(at=T0 + timedelta(minutes=i // 2), data={"i": i}))[0]
            for i in range(7)
        ]
        pages = []
        after = None
        while True:
            page = storage.entries("order-1", store="shop", after=after, limit=3)
            if not page:
                break
            pages.append(page)
            last = page[-1]
            assert last.seq is not None
            after = (last.at, last.seq)
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [e for p in pages for e in p] == stored
        assert storage.entries("order-1", store="shop", limit=2) == stored[:2]

    def test_entry_count_counts_what_entries_reads(self, storage: Storage) -> None:
        """``entry_count`` (EntryCount, optional): the number of entries ``entries`` returns."""
        if not isinstance(storage, EntryCount):
            pytest.skip("the storage does not implement EntryCount (optional)")
        assert storage.entry_count("order-1", store="shop") == 0
        for i in range(3):
            storage.append(make_entry(at=T0 - timedelta(days=i), data={"i": i}))
        storage.append(make_entry(dedup_key="once", data={"i": 9}))
        storage.append(make_entry(dedup_key="once", data={"i": 10}))  # the same entry: one
        storage.append(make_entry("order-2", data={"i": 0}))
        storage.append(make_entry(store="other", data={"i": 0}))
        for conversation, store in (("order-1", "shop"), ("order-2", "shop"), ("order-1", "other")):
            count = storage.entry_count(conversation, store=store)
            assert count == len(storage.entries(conversation, store=store))
        assert storage.entry_count("order-1", store="shop") == 4
        assert storage.entry_count("order-3", store="shop") == 0

    def test_rule_entries_reduce_only_messages_data(self, storage: Storage) -> None:
        """``rule_entries`` (RuleScan, optional): ``entries`` with a message's data reduced."""
        if not isinstance(storage, RuleScan):
            pytest.skip("the storage does not implement RuleScan (optional)")
        datas: list[dict[str, Any]] = [
            {"messageId": "m1@example.com", "subject": "Entrega", "to": [{"name": "M"}]},
            {"messageId": "ct2.x", "subject": "ct2.y", "sealed": True},
            {"subject": "sealed", "messageId": None, "n": {"messageId": "nested"}},
            {"subject": "no id"},
        ]
        for i, data in enumerate(datas):
            at = T0 + timedelta(minutes=i)
            storage.append(make_entry(kind=EntryKind.MESSAGE, name="inbound", at=at, data=data))
        storage.append(make_entry(data={"slot": "s", "messageId": "an event's, kept"}))
        storage.append(make_entry("order-2", data={"i": 0}))
        for after in (None, (T0, -1), (T0 + timedelta(minutes=1), 0)):
            for limit in (1, 3, 100):
                expected = [
                    evolve(e, data={k: e.data[k] for k in ("messageId", "sealed") if k in e.data})
                    if e.kind is EntryKind.MESSAGE
                    else e
                    for e in storage.entries("order-1", store="shop", after=after, limit=limit)
                ]
                ruled = storage.rule_entries("order-1", store="shop", after=after, limit=limit)
                assert ruled == expected

    # -- rekeying ------------------------------------------------------------------

    def test_scan_pages_are_full_whatever_was_purged(self, storage: Storage) -> None:
        """Purged records never count against ``limit``: every page but the last is full.

        ``rotate_address_keys`` reads pages until an empty one; a backend that
        counted purged records would return short or empty pages early, and
        the rotation would stop with live records left behind.
        """
        made = [
            make_alias(ttl=timedelta(days=1) if i % 3 else timedelta(days=60)) for i in range(24)
        ]
        for alias in made:
            storage.get_or_create(alias, now=T0)
        now = T0 + timedelta(days=5)
        assert storage.purge(before=now, now=now) == 16
        live = sorted(a.key for a in made if a.expires_at > now)
        for limit in (1, 3, 7, 8, 100):
            seen: list[str] = []
            after = None
            while page := storage.scan(after=after, limit=limit):
                assert len(page) <= limit
                keys = [a.key for a in page]
                assert keys == sorted(keys)
                assert len(page) == limit or keys[-1] == live[-1], f"a short page (limit {limit})"
                seen += keys
                after = keys[-1]
            assert seen == live, f"limit {limit}"

    def test_an_empty_scan_page_means_the_end_and_only_the_end(self, storage: Storage) -> None:
        """An empty page: nothing live after ``after``. A non-empty one otherwise."""
        assert storage.scan(after=None, limit=5) == []
        made = sorted((make_alias() for _ in range(6)), key=lambda a: a.key)
        for alias in made:
            storage.get_or_create(alias, now=T0)
        revoked = [AliasChange(a.key, AliasStatus.REVOKED, None, T0) for a in made[:5]]
        storage.update(revoked)  # all but the last record purged: it comes after five tombstones
        now = T0 + timedelta(days=1)
        assert storage.purge(before=now, now=now) == 5
        assert [a.key for a in storage.scan(after=None, limit=1)] == [made[-1].key]
        assert [a.key for a in storage.scan(after=made[0].key, limit=2)] == [made[-1].key]
        assert storage.scan(after=made[-1].key, limit=5) == []
        assert storage.scan(after="f" * 32, limit=5) == []

    def test_scan_and_reseal(self, storage: Storage) -> None:
        """Scan and reseal."""
        made = [make_alias() for _ in range(5)]
        for alias in made:
            storage.get_or_create(alias, now=T0)
        keys = sorted(a.key for a in made)
        first = storage.scan(after=None, limit=2)
        assert [a.key for a in first] == keys[:2]
        rest = storage.scan(after=first[-1].key, limit=10)
        assert [a.key for a in rest] == keys[2:]
        assert storage.scan(after=keys[-1], limit=10) == []
        updates = [Sealed(a.key, "sealed:" + a.key, "sealed-real:" + a.key) for a in first]
        assert storage.reseal([*updates, Sealed(_hex(), "x", "y")]) == 2
        for alias in first:
            stored = storage.get(alias.key)
            assert isinstance(stored, Alias)
            assert stored.address == "sealed:" + alias.key
            assert stored.real_address == "sealed-real:" + alias.key

    # -- erasure (ErasureStorage, optional) ------------------------------------------

    @staticmethod
    def _erasure(storage: Storage) -> ErasureStorage:
        if not isinstance(storage, ErasureStorage):
            pytest.skip("the storage does not implement ErasureStorage (optional)")
        return storage

    def test_owners_are_kept_found_and_survive_a_purge(self, storage: Storage) -> None:
        """``owner`` round-trips; ``owned`` finds a person's records anywhere, purged ones too."""
        erasure = self._erasure(storage)
        owner = _hex()
        mine = [
            make_alias(owner=owner),
            make_alias(owner=owner, store="shop-b", conversation="order-9"),
            make_alias(owner=owner, ttl=timedelta(days=1), conversation="order-7"),
        ]
        others = [make_alias(owner=_hex()), make_alias()]
        for alias in (*mine, *others):
            storage.get_or_create(alias, now=T0)
        for alias in (*mine, *others):
            stored = storage.get(alias.key)
            assert stored == alias
            assert stored.owner == alias.owner  # equality ignores the owner: compare it
        found = erasure.owned(owner)
        assert found == sorted(mine, key=lambda a: a.key)
        assert [r.owner for r in found] == [owner] * 3
        assert erasure.owned(_hex()) == []
        now = T0 + timedelta(days=5)
        assert storage.purge(before=now, now=now) == 1
        found = erasure.owned(owner)
        assert [r.key for r in found] == sorted(a.key for a in mine)
        (tomb,) = [r for r in found if isinstance(r, Tombstone)]
        assert (tomb.key, tomb.owner, tomb.purged_at) == (mine[2].key, owner, now)

    def test_unowned_pages_and_set_owners(self, storage: Storage) -> None:
        """Aliases without owner page like ``scan``; ``set_owners`` fills only those."""
        erasure = self._erasure(storage)
        unowned = [make_alias() for _ in range(7)]
        owned = [make_alias(owner=_hex()) for _ in range(3)]
        gone = make_alias(ttl=timedelta(days=1))
        for alias in (*unowned, *owned, gone):
            storage.get_or_create(alias, now=T0)
        now = T0 + timedelta(days=5)
        storage.purge(before=now, now=now)
        expected = sorted(a.key for a in unowned)
        for limit in (1, 2, 3, 100):
            seen: list[str] = []
            after = None
            while page := erasure.unowned(after=after, limit=limit):
                keys = [a.key for a in page]
                assert keys == sorted(keys)
                assert len(page) == limit or keys[-1] == expected[-1], f"a short page ({limit})"
                assert all(a.owner is None for a in page)
                seen += keys
                after = keys[-1]
            assert seen == expected, f"limit {limit}"
        new = {a.key: _hex() for a in unowned[:4]}
        extra = {owned[0].key: _hex(), gone.key: _hex(), _hex(): _hex()}
        assert erasure.set_owners({**new, **extra}) == 4  # owned, purged and unknown skipped
        assert erasure.set_owners({}) == 0
        for key, owner in new.items():
            stored = storage.get(key)
            assert isinstance(stored, Alias)
            assert stored.owner == owner
        assert storage.get(owned[0].key) == owned[0]
        assert [a.key for a in erasure.unowned(after=None, limit=100)] == sorted(
            a.key for a in unowned[4:]
        )

    def test_erase_tombstones_redacts_and_appends_together(self, storage: Storage) -> None:
        """An erasure tombstones, unlinks, redacts in place and appends; others are untouched."""
        erasure = self._erasure(storage)
        owner = _hex()
        live = make_alias(owner=owner)
        purged = make_alias(owner=owner, ttl=timedelta(days=1), conversation="order-2")
        bystander = make_alias(role=Role.STORE)
        for alias in (live, purged, bystander):
            storage.get_or_create(alias, now=T0)
        later = T0 + timedelta(days=3)
        storage.purge(before=later, now=later)
        named, _ = storage.append(
            make_entry(kind=EntryKind.MESSAGE, name="inbound", dedup_key="mid:n", data={"s": "x"})
        )
        kept, _ = storage.append(make_entry(data={"s": "kept"}))
        elsewhere, _ = storage.append(make_entry("order-2", data={"s": "y"}))
        now = T0 + timedelta(days=4)
        erased = Tombstone(
            key=live.key,
            conversation=live.conversation,
            store=live.store,
            role=live.role,
            expired_at=now,
            reason=ExpiryReason.REVOKED,
            purged_at=now,
        )
        old = storage.get(purged.key)
        assert isinstance(old, Tombstone)
        forgotten = make_entry(name=AliasEvent.FORGOTTEN.value, at=now, data={"aliases": 1})
        changed, redacted = erasure.erase(
            Erasure(
                tombstones=(erased, old, evolve(erased, key=_hex())),
                redactions=(
                    evolve(named, data={"s": "[redacted]", "redacted": True}),
                    evolve(elsewhere, store="shop-b", data={"s": "no"}),  # not its place
                ),
                entries=(forgotten,),
            )
        )
        assert (changed, redacted) == (2, 1)
        assert storage.get(live.key) == erased
        assert storage.get(purged.key) == old
        for key in (live.key, purged.key):
            record = storage.get(key)
            assert isinstance(record, Tombstone)
            assert record.owner is None, "an erased record keeps no owner"
        assert storage.get(bystander.key) == bystander
        assert erasure.owned(owner) == []
        assert old.owner == owner  # the purge had kept it
        assert storage.aliases("order-1", store="shop") == [bystander]
        assert live.key not in {a.key for a in storage.scan(after=None, limit=100)}
        timeline = storage.entries("order-1", store="shop")
        assert [e.seq for e in timeline[:2]] == [named.seq, kept.seq]
        assert timeline[0] == evolve(named, data={"s": "[redacted]", "redacted": True})
        assert timeline[1] == kept
        assert timeline[2].name == AliasEvent.FORGOTTEN.value
        assert timeline[2].data == {"aliases": 1}
        assert storage.entries("order-2", store="shop") == [elsewhere]
        again, new = storage.append(make_entry(kind=EntryKind.MESSAGE, dedup_key="mid:n"))
        assert not new
        assert again == timeline[0]  # de-duplication answers with the redacted entry
        assert live.slot is not None
        fresh = make_alias(slot=live.slot, created_at=now)
        assert storage.get_or_create(fresh, now=now) == (fresh, True)  # the slot is free
        assert erasure.erase(Erasure()) == (0, 0)
