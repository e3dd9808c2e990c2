"""A hypothesis state machine drives a Tracker against a model of its own (memory and SQLite).

The model knows, for every alias ever issued: who it stands for, which key
signed it, its stored status, ``ends_at``, ``revoked_at`` and whether it was
purged (and with which tombstone). After every step the tracker must agree
with the model on what every alias unmasks to (or which error, with which
``reason`` and ``expired_at``), on every conversation's aliases and their
statuses, and on how many lifecycle entries every timeline holds.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from attrs import define
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ct_alias import (
    Alias,
    AliasStatus,
    CtAliasError,
    Direction,
    EntryKind,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    FrozenClock,
    MalformedAlias,
    MemoryStorage,
    OrderEvent,
    Policy,
    RevokedAlias,
    Role,
    Storage,
    Tracker,
    UnknownAlias,
)

from .hostile import (
    COMPLEX_ALIAS,
    DEFAULT_POLICY,
    DOMAIN,
    OTHER_STORE,
    POLICIES,
    SHORT_STORE,
    SIMPLE_STORE,
    SIMPLE_TAG,
    START,
    make_tracker,
    rfc5321_problems,
)

# -- the world the machine plays in ----------------------------------------------------

#: address as given → (participant, the normalised real address the tracker keeps,
#: whether the simple strategy can represent it).
ADDRESSES: dict[str, tuple[str, str, bool]] = {
    "maria@example.com.br": ("maria", "maria@example.com.br", True),
    "MARIA@Example.COM.br": ("maria", "MARIA@example.com.br", True),
    "jo\u00e3o@exemplo.com.br": ("joao", "jo\u00e3o@exemplo.com.br", False),  # NFC
    "joa\u0303o@exemplo.com.br": ("joao", "jo\u00e3o@exemplo.com.br", False),  # NFD
    '"john doe"@example.com': ("john", '"john doe"@example.com', False),
    "ana@M\u00fcnchen.de": ("ana", "ana@xn--mnchen-3ya.de", True),
    "vendas@loja.example.com": ("vendas", "vendas@loja.example.com", True),
}
CONVERSATIONS = ("o1", "o2", "o3")
STORES = ("default", SIMPLE_STORE, SHORT_STORE)
#: Conversations are keyed by (store, conversation): every store has an "o1".
PLACES = tuple((store, conversation) for store in STORES for conversation in CONVERSATIONS)
ROLES = (Role.CUSTOMER, Role.STORE, Role.FOLLOW_UP)
EVENTS = (
    OrderEvent.INVOICED,
    OrderEvent.CANCELED,
    OrderEvent.DELIVERED,
    OrderEvent.DISPATCHED,
    "order-closed",
)
REQUESTS = st.tuples(
    st.sampled_from(sorted(ADDRESSES)),
    st.sampled_from(CONVERSATIONS),
    st.sampled_from(STORES),
    st.sampled_from(ROLES),
)
STEPS = (
    timedelta(minutes=1),
    timedelta(minutes=59),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=6, hours=23),
    timedelta(days=30),
    timedelta(days=61),
)
#: Lifecycle entries the model counts on every timeline.
CREATED, ENDED, REACTIVATED, REVOKED, UNMASKED = (
    "alias-created",
    "alias-ended",
    "alias-reactivated",
    "alias-revoked",
    "alias-unmasked",
)


def policy_of(store: str) -> Policy:
    return POLICIES.get(store, DEFAULT_POLICY)


@define
class Model:
    """What the model knows of one issued alias."""

    address: str
    participant: str
    real_address: str
    conversation: str
    store: str
    role: Role
    strategy: str
    created_at: datetime
    expires_at: datetime
    signed_by: str
    issued: Alias
    status: AliasStatus = AliasStatus.ACTIVE
    ends_at: datetime | None = None
    revoked_at: datetime | None = None
    tombstone: tuple[datetime, ExpiryReason] | None = None

    def usable(self, now: datetime) -> bool:
        return (
            self.tombstone is None
            and self.status is not AliasStatus.REVOKED
            and now < self.expires_at
            and (self.ends_at is None or now < self.ends_at)
        )

    def stopped(self) -> tuple[datetime, ExpiryReason]:
        if self.status is AliasStatus.REVOKED:
            assert self.revoked_at is not None
            return self.revoked_at, ExpiryReason.REVOKED
        if self.ends_at is not None and self.ends_at < self.expires_at:
            return self.ends_at, ExpiryReason.ENDED
        return self.expires_at, ExpiryReason.TTL


@define
class Stranger:
    """An alias signed with our keys by a sibling tracker, so never in our store."""

    address: str
    expires_at: datetime
    signed_by: str


class TrackerMachine(RuleBasedStateMachine):
    """Drives one tracker (rebuilt on key rotation) over one store against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(START)
        self.keys = ["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"]
        self.retired: set[str] = set()
        self.key_counter = 1
        self.store = self.make_store()
        self.tracker = self.build(self.store)
        self.sibling_store = MemoryStorage()
        self.sibling = self.build(self.sibling_store)
        self.models: list[Model] = []
        self.slots: dict[tuple[str, str, Role, str], Model] = {}
        self.strangers: list[Stranger] = []
        # a conversation is keyed by (store, conversation)
        self.counts: dict[tuple[str, str], Counter[str]] = {p: Counter() for p in PLACES}
        self.messages: dict[tuple[str, str], set[int]] = {p: set() for p in PLACES}

    # -- plumbing ---------------------------------------------------------------------

    def make_store(self) -> Storage:
        return MemoryStorage()

    def build(self, store: Storage) -> Tracker:
        return make_tracker(store, self.clock, self.keys)

    def rebuild(self) -> None:
        self.tracker = self.build(self.store)
        self.sibling = self.build(self.sibling_store)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def by_address(self, address: str) -> Model | None:
        return next((m for m in self.models if m.address == address), None)

    def in_conversation(self, store: str, conversation: str) -> list[Model]:
        """The model's not-purged aliases of a conversation, oldest first (as stores list them)."""
        return sorted(
            (
                m
                for m in self.models
                if (m.store, m.conversation) == (store, conversation) and m.tombstone is None
            ),
            key=lambda m: m.created_at,
        )

    def expected_unmask(self, model: Model) -> tuple[type[CtAliasError], datetime, ExpiryReason]:
        """The error unmask must raise for ``model`` now, or a ``(None…)`` triple when it works."""
        now = self.now
        if model.signed_by in self.retired:
            return ForgedAlias, now, ExpiryReason.TTL
        if now >= model.expires_at:
            return ExpiredAlias, model.expires_at, ExpiryReason.TTL
        if model.tombstone is not None:
            when, reason = model.tombstone
            kind = RevokedAlias if reason is ExpiryReason.REVOKED else ExpiredAlias
            return kind, when, reason
        if model.status is AliasStatus.REVOKED:
            assert model.revoked_at is not None
            return RevokedAlias, model.revoked_at, ExpiryReason.REVOKED
        if model.ends_at is not None and now >= model.ends_at:
            return ExpiredAlias, model.ends_at, ExpiryReason.ENDED
        return CtAliasError, now, ExpiryReason.TTL  # CtAliasError itself: "no error"

    def check_unmask(self, model: Model, address: str, *, reason: str | None = None) -> bool:
        """Unmask ``address`` (a spelling of ``model``'s alias); True when it worked."""
        kind, when, why = self.expected_unmask(model)
        if kind is CtAliasError:
            got = self.tracker.unmask(address, reason=reason)
            assert got.address == model.address
            assert got.real_address == model.real_address
            assert (got.conversation, got.store, got.role) == (
                model.conversation,
                model.store,
                model.role,
            )
            assert (got.status, got.ends_at, got.expires_at) == (
                model.status,
                model.ends_at,
                model.expires_at,
            )
            return True
        with pytest.raises(CtAliasError) as info:
            self.tracker.unmask(address, reason=reason)
        assert type(info.value) is kind, (model, info.value)
        if isinstance(info.value, ExpiredAlias):
            assert info.value.reason is why, (model, info.value)
            assert info.value.expired_at == when, (model, info.value)
        return False

    # -- rules: mask --------------------------------------------------------------------

    @initialize(requests=st.lists(REQUESTS, min_size=2, max_size=5))
    def start_with_some_aliases(self, requests: list[tuple[str, str, str, Role]]) -> None:
        for request in requests:
            self.mask_one(*request)

    @rule(requests=st.lists(REQUESTS, min_size=1, max_size=3))
    def mask(self, requests: list[tuple[str, str, str, Role]]) -> None:
        for request in requests:
            self.mask_one(*request)

    def mask_one(self, given: str, conversation: str, store: str, role: Role) -> None:
        participant, real, representable = ADDRESSES[given]
        slot = (store, conversation, role, participant)
        current = self.slots.get(slot)
        now = self.now
        if current is not None and current.usable(now) and current.signed_by in self.retired:
            # Its key was retired: mask revokes it (recorded) and issues a fresh alias.
            current.status, current.revoked_at = AliasStatus.REVOKED, now
            self.counts[store, conversation][REVOKED] += 1
        alias = self.tracker.mask(given, conversation=conversation, store=store, role=role)
        if current is not None and current.usable(now):
            assert alias.address == current.address, "mask is idempotent while usable"
            assert (alias.status, alias.ends_at) == (current.status, current.ends_at)
            return
        assert current is None or alias.address != current.address, "a fresh alias after expiry"
        assert self.by_address(alias.address) is None, "an alias address is never issued twice"
        policy = policy_of(store)
        strategy = "simple" if policy.strategy == "simple" and representable else "complex"
        assert alias.strategy == strategy
        assert not rfc5321_problems(alias.address), rfc5321_problems(alias.address)
        if strategy == "complex":
            match = COMPLEX_ALIAS.fullmatch(alias.address)
            assert match is not None, alias.address
            assert match["domain"] == policy.domain, alias.address
        else:
            local, _, domain = real.rpartition("@")
            prefix = f"{local.lower()}@{domain}-"
            assert alias.address.startswith(prefix), alias.address
            assert alias.address.endswith("." + policy.domain), alias.address
            tag = alias.address[len(prefix) : -len(policy.domain) - 1]
            assert SIMPLE_TAG.fullmatch(tag), alias.address
        assert alias.real_address == real
        assert (alias.conversation, alias.store, alias.role) == (conversation, store, role)
        assert alias.created_at == now
        assert alias.expires_at == now + policy.ttl
        assert (alias.status, alias.ends_at, alias.revoked_at) == (AliasStatus.ACTIVE, None, None)
        model = Model(
            address=alias.address,
            participant=participant,
            real_address=real,
            conversation=conversation,
            store=store,
            role=role,
            strategy=strategy,
            created_at=now,
            expires_at=alias.expires_at,
            signed_by=self.keys[-1],
            issued=alias,
        )
        self.models.append(model)
        self.slots[slot] = model
        self.counts[store, conversation][CREATED] += 1

    @rule(given=st.sampled_from(sorted(ADDRESSES)), store=st.sampled_from(STORES))
    def mint_stranger(self, given: str, store: str) -> None:
        """An alias signed with our current key by a tracker over another store."""
        conversation = f"sibling-{len(self.strangers)}"
        alias = self.sibling.mask(given, conversation=conversation, store=store)
        self.strangers.append(Stranger(alias.address, alias.expires_at, self.keys[-1]))

    # -- rules: unmask --------------------------------------------------------------------

    @precondition(lambda self: self.models)
    @rule(index=st.integers(min_value=0), upper=st.booleans())
    def unmask_with_reason(self, index: int, upper: bool) -> None:
        model = self.models[index % len(self.models)]
        address = model.address.upper() if upper else model.address
        if self.check_unmask(model, address, reason="customer service"):
            self.counts[model.store, model.conversation][UNMASKED] += 1

    @precondition(lambda self: self.models)
    @rule(
        index=st.integers(min_value=0),
        position=st.integers(min_value=0),
        char=st.sampled_from("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-@_"),
    )
    def unmask_tampered(self, index: int, position: int, char: str) -> None:
        model = self.models[index % len(self.models)]
        address = model.address
        position %= len(address)
        tampered = address[:position] + char + address[position + 1 :]
        if tampered.lower() == address:
            self.check_unmask(model, tampered)
            return
        with pytest.raises((ForgedAlias, MalformedAlias)):
            self.tracker.unmask(tampered)

    @rule(
        text=st.text(max_size=80) | st.from_regex(r"1[0-9a-v]{39}@ct\.example\.com", fullmatch=True)
    )
    def unmask_garbage(self, text: str) -> None:
        with pytest.raises((ForgedAlias, MalformedAlias)):
            self.tracker.unmask(text)

    # -- rules: time and keys ---------------------------------------------------------------

    @rule(step=st.sampled_from(STEPS))
    def advance(self, step: timedelta) -> None:
        self.clock.advance(step)

    @rule()
    def add_key(self) -> None:
        self.keys.append(secrets.token_urlsafe(32))
        self.key_counter += 1
        self.rebuild()

    @precondition(lambda self: len(self.keys) > 2)  # keys live a while before retiring
    @rule()
    def retire_oldest_key(self) -> None:
        self.retired.add(self.keys.pop(0))
        self.rebuild()

    # -- rules: lifecycle --------------------------------------------------------------------

    def _end(
        self,
        place: tuple[str, str],
        at: datetime,
        event: str | None,
        grace: timedelta | None,
    ) -> list[Model]:
        now = self.now
        ended = []
        for model in self.in_conversation(*place):
            policy = policy_of(model.store)
            if event is not None and event not in policy.end_on:
                continue
            if model.status is not AliasStatus.ACTIVE or not model.usable(now):
                continue
            ends_at = min(at + (policy.grace if grace is None else grace), model.expires_at)
            if model.ends_at is not None:
                ends_at = min(ends_at, model.ends_at)
            model.status, model.ends_at = AliasStatus.ENDED, ends_at
            ended.append(model)
            self.counts[place][ENDED] += 1
        return ended

    @rule(
        place=st.sampled_from(PLACES),
        event=st.sampled_from(EVENTS),
        offset=st.sampled_from([None, -timedelta(days=2), -timedelta(hours=1), timedelta(days=1)]),
    )
    def record_event(self, place: tuple[str, str], event: str, offset: timedelta | None) -> None:
        store, conversation = place
        at = self.now if offset is None else self.now + offset
        entry = self.tracker.record_event(
            conversation, event, store=store, at=None if offset is None else at, data={"n": 1}
        )
        assert (entry.kind, entry.name, entry.at) == (EntryKind.EVENT, str(event), at)
        assert (entry.store, entry.conversation) == place
        self._end(place, at, str(event), None)
        self.counts[place][str(event)] += 1

    @rule(
        place=st.sampled_from(PLACES),
        grace=st.sampled_from([None, timedelta(0), timedelta(hours=1), timedelta(days=5)]),
    )
    def end(self, place: tuple[str, str], grace: timedelta | None) -> None:
        store, conversation = place
        ended = self.tracker.end(conversation, store=store, grace=grace)
        expected = self._end(place, self.now, None, grace)
        assert sorted(a.address for a in ended) == sorted(m.address for m in expected)

    @rule(
        place=st.sampled_from(PLACES),
        for_=st.sampled_from([timedelta(hours=1), timedelta(days=2), timedelta(days=90)]),
    )
    def reactivate(self, place: tuple[str, str], for_: timedelta) -> None:
        now = self.now
        store, conversation = place
        got = self.tracker.reactivate(conversation, store=store, for_=for_)
        expected = []
        for model in self.in_conversation(store, conversation):
            if model.status is AliasStatus.REVOKED or now >= model.expires_at:
                continue
            if model.status is not AliasStatus.ENDED and model.ends_at is None:
                continue
            model.status, model.ends_at = AliasStatus.ACTIVE, min(now + for_, model.expires_at)
            expected.append(model)
            self.counts[place][REACTIVATED] += 1
        assert sorted(a.address for a in got) == sorted(m.address for m in expected)
        for alias in got:
            found = self.by_address(alias.address)
            assert found is not None
            assert (alias.status, alias.ends_at) == (found.status, found.ends_at)

    @precondition(lambda self: self.models)
    @rule(index=st.integers(min_value=0), as_object=st.booleans(), upper=st.booleans())
    def revoke(self, index: int, as_object: bool, upper: bool) -> None:
        model = self.models[index % len(self.models)]
        target: Alias | str = model.issued if as_object else model.address
        if isinstance(target, str) and upper:
            target = target.upper()
        now = self.now
        if not as_object and model.signed_by in self.retired:
            with pytest.raises(ForgedAlias):
                self.tracker.revoke(target, reason="fraud")
            return
        if model.tombstone is not None:
            when, why = model.tombstone
            with pytest.raises(ExpiredAlias) as info:
                self.tracker.revoke(target, reason="fraud")
            kind = RevokedAlias if why is ExpiryReason.REVOKED else ExpiredAlias
            assert type(info.value) is kind
            assert (info.value.reason, info.value.expired_at) == (why, when)
            return
        got = self.tracker.revoke(target, reason="fraud")
        if model.status is not AliasStatus.REVOKED:
            model.status, model.revoked_at = AliasStatus.REVOKED, now
            self.counts[model.store, model.conversation][REVOKED] += 1
        assert got.address == model.address
        assert (got.status, got.revoked_at, got.ends_at) == (
            model.status,
            model.revoked_at,
            model.ends_at,
        )

    @rule(older_than=st.sampled_from([timedelta(0), timedelta(days=1), timedelta(days=30)]))
    def purge(self, older_than: timedelta) -> None:
        before = self.now - older_than
        expected = 0
        for model in self.models:
            if model.tombstone is not None:
                continue
            when, why = model.stopped()
            if when < before:
                model.tombstone = (when, why)
                expected += 1
        assert self.tracker.purge(older_than=older_than) == expected

    @rule(place=st.sampled_from(PLACES), number=st.integers(0, 3))
    def record_message(self, place: tuple[str, str], number: int) -> None:
        store, conversation = place
        data = (
            f"From: Someone <someone@elsewhere.example.org>\r\n"
            f"To: somebody@elsewhere.example.org\r\n"
            f"Subject: message {number}\r\n"
            f"Message-ID: <m{number}@elsewhere.example.org>\r\n\r\nHello {number}\r\n"
        ).encode()
        entry = self.tracker.record_message(
            conversation, data, direction=Direction.INBOUND, store=store
        )
        assert entry.kind is EntryKind.MESSAGE
        assert entry.data["subject"] == f"message {number}"
        if number not in self.messages[place]:
            self.messages[place].add(number)
            self.counts[place][Direction.INBOUND.value] += 1

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_alias_unmasks_as_the_model_says(self) -> None:
        for model in self.models:
            self.check_unmask(model, model.address)
        now = self.now
        for stranger in self.strangers:
            with pytest.raises(CtAliasError) as info:
                self.tracker.unmask(stranger.address)
            if stranger.signed_by in self.retired:
                assert type(info.value) is ForgedAlias
            elif now >= stranger.expires_at:
                assert type(info.value) is ExpiredAlias
                assert info.value.reason is ExpiryReason.TTL
            else:
                assert type(info.value) is UnknownAlias

    @invariant()
    def conversations_and_timelines_agree(self) -> None:
        now = self.now
        for store, conversation in PLACES:
            listed = self.tracker.aliases(conversation, store=store)
            expected = self.in_conversation(store, conversation)
            assert [a.address for a in listed] == [m.address for m in expected]
            for alias, model in zip(listed, expected, strict=True):
                assert alias.real_address == model.real_address
                assert (alias.status, alias.ends_at, alias.revoked_at) == (
                    model.status,
                    model.ends_at,
                    model.revoked_at,
                ), model
                assert (alias.created_at, alias.expires_at) == (model.created_at, model.expires_at)
                assert alias.usable_at(now) == model.usable(now)
            timeline = self.tracker.timeline(conversation, store=store)
            counts = Counter(entry.name for entry in timeline.entries)
            assert +counts == +self.counts[store, conversation], (store, conversation)
            assert [e.at for e in timeline.entries] == sorted(e.at for e in timeline.entries)


class SQLiteTrackerMachine(TrackerMachine):
    """The same machine over a SQLite file (a fresh one per run)."""

    def make_store(self) -> Storage:
        from ct_alias.storage.sql import SQLStorage

        self.tmpdir = tempfile.mkdtemp(prefix="ct-alias-stateful-")
        store = SQLStorage(f"sqlite:///{Path(self.tmpdir) / 'x.db'}")
        store.upgrade()
        return store

    def teardown(self) -> None:
        self.store.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.tmpdir, ignore_errors=True)


_COMMON: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}

TestMemoryTracker = TrackerMachine.TestCase
TestMemoryTracker.settings = settings(max_examples=100, stateful_step_count=50, **_COMMON)

TestSQLiteTracker = SQLiteTrackerMachine.TestCase
TestSQLiteTracker.settings = settings(max_examples=25, stateful_step_count=30, **_COMMON)


# -- keys and domains that go away ------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield MemoryStorage()
        return
    from ct_alias.storage.sql import SQLStorage

    with SQLStorage(f"sqlite:///{tmp_path / 'x.db'}") as store:
        store.upgrade()
        yield store


@pytest.mark.parametrize("store_name", ["default", SIMPLE_STORE])
def test_mask_after_retiring_the_signing_key_issues_a_working_alias(
    any_store: Storage, store_name: str
) -> None:
    clock = FrozenClock(START)
    old = make_tracker(any_store, clock, ["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"])
    first = old.mask("maria@example.com.br", conversation="o1", store=store_name)
    rotated = make_tracker(
        any_store,
        clock,
        [
            "0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I",
            "jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU",
        ],
    )
    assert rotated.mask("maria@example.com.br", conversation="o1", store=store_name) == first
    retired = make_tracker(any_store, clock, ["jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU"])
    with pytest.raises(ForgedAlias):
        retired.unmask(first.address)
    again = retired.mask("maria@example.com.br", conversation="o1", store=store_name)
    # The alias handed out must work: the one signed by the retired key no longer does.
    assert again.address != first.address
    assert retired.unmask(again.address).real_address == "maria@example.com.br"
    assert retired.mask("MARIA@example.com.br", conversation="o1", store=store_name) == again
    listed = retired.aliases("o1", store=store_name)
    (old_record,) = [a for a in listed if a.address == first.address]
    assert old_record.status is AliasStatus.REVOKED
    names = [e.name for e in retired.timeline("o1", store=store_name).events]
    assert names.count(CREATED) == 2
    assert names.count(REVOKED) == 1


@pytest.mark.parametrize("store_name", ["default", OTHER_STORE])
def test_mask_after_an_alias_domain_change_issues_a_working_alias(
    any_store: Storage, store_name: str
) -> None:
    clock = FrozenClock(START)
    tracker = make_tracker(any_store, clock)
    first = tracker.mask("maria@example.com.br", conversation="o1", store=store_name)
    moved = Policy(domain="ct.new-domain.example", strategy=policy_of(store_name).strategy)
    if store_name == "default":  # the default policy's domain moves with a new tracker
        tracker = Tracker(
            storage=any_store,
            keys=["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"],
            default_policy=moved,
            clock=clock,
            index_key="hostile-index-key",
        )
        # policies are stored: the other stores serve the old domain until they move too
        for other, policy in POLICIES.items():
            tracker.set_policy(other, attrs.evolve(policy, domain="ct.new-domain.example"))
    else:
        tracker.set_policy(store_name, moved)
    with pytest.raises(MalformedAlias):
        tracker.unmask(first.address)  # its domain is no longer served
    again = tracker.mask("maria@example.com.br", conversation="o1", store=store_name)
    assert again.address.endswith("ct.new-domain.example")
    assert tracker.unmask(again.address).real_address == "maria@example.com.br"


def test_retired_aliases_outside_the_slot_path_still_behave(any_store: Storage) -> None:
    """What the machine relies on around retired keys, spelled out once."""
    clock = FrozenClock(START)
    old = make_tracker(any_store, clock, ["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"])
    first = old.mask("maria@example.com.br", conversation="o1")
    retired = make_tracker(any_store, clock, ["jX__0H5nRmnOdLLpc_oIVv90foRRGbIbp_nHfiJVypU"])
    with pytest.raises(ForgedAlias):
        retired.revoke(first.address)
    # The record itself is still there: ending and revoking by object work on storage.
    assert [a.address for a in retired.end("o1")] == [first.address]
    assert retired.revoke(first).status is AliasStatus.REVOKED
    assert DOMAIN in first.address
