"""``ParticipantsAppend``: a message recorded in one transaction that also reads its participants.

``SQLStorage.append_made`` reads the conversation's aliases in the write, gives
them to ``make`` and appends its entry (once per dedup key); the tracker's
``record_message`` uses it where the storage has it, and records exactly what
it records through ``aliases()`` then ``append()`` elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from ct_alias import Policy, Tracker
from ct_alias.aliases import Alias
from ct_alias.clock import FrozenClock
from ct_alias.errors import InvalidArgument, StorageError
from ct_alias.storage import MemoryStorage, ParticipantsAppend
from ct_alias.storage.sql import SQLStorage, direct
from ct_alias.testing import T0, RoundTrips, make_alias, make_entry
from ct_alias.timeline import EntryKind, TimelineEntry
from ct_alias.vocabulary import DEFAULT_STORE

from .sql_statements import Statements

# generated with secrets.token_urlsafe(32) for these tests
KEY = "0nBIUqa61qR9OOw9gqa55Xl8ryW1-mVIsHU4_xTFuh8"
INDEX_KEY = "xQy5eGEqEXUrR-zqh6l4IL8B8Ldz7nHeM2jgmNrLp8s"


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    url = f"sqlite:///{tmp_path / 'made.db'}" if request.param == "file" else "sqlite://"
    with SQLStorage(url) as opened:
        opened.upgrade()
        yield opened


def test_the_entry_is_made_from_the_participants_of_the_write(store: SQLStorage) -> None:
    first, second = make_alias(), make_alias()
    store.get_or_create(first, now=T0)
    store.get_or_create(second, now=T0)
    seen: list[list[Alias]] = []

    def make(participants: list[Alias]) -> TimelineEntry:
        seen.append(participants)
        refs = [alias.key for alias in participants]
        return make_entry(conversation="order-1", store="shop", data={"refs": refs}, dedup_key="m1")

    stored, new = store.append_made("order-1", store="shop", make=make)
    assert new
    assert seen == [store.aliases("order-1", store="shop")]
    assert stored.data == {"refs": [first.key, second.key]}
    again, new = store.append_made("order-1", store="shop", make=make)
    assert not new
    assert again == stored
    assert store.entries("order-1", store="shop") == [stored]


def test_an_entry_of_another_conversation_or_without_dedup_key_writes_nothing(
    store: SQLStorage,
) -> None:
    wrong = [
        make_entry(conversation="order-2", store="shop", dedup_key="m1"),
        make_entry(conversation="order-1", store="other", dedup_key="m1"),
        make_entry(conversation="order-1", store="shop"),
    ]
    for entry in wrong:

        def make(participants: list[Alias], entry: TimelineEntry = entry) -> TimelineEntry:
            del participants
            return entry

        with pytest.raises(InvalidArgument):
            store.append_made("order-1", store="shop", make=make)
    for conversation, name in (("order-1", "shop"), ("order-2", "shop"), ("order-1", "other")):
        assert store.entries(conversation, store=name) == []


class WithoutAppendMade:
    """The same storage, seen without ``append_made`` (a storage that lacks it)."""

    def __init__(self, inner: SQLStorage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "append_made":
            raise AttributeError(name)
        return getattr(self._inner, name)


def tracker_on(storage: object) -> Tracker:
    return Tracker(
        storage=storage,  # type: ignore[arg-type]
        keys=[KEY],
        index_key=INDEX_KEY,
        default_policy=Policy(domain="ct.example.com"),
        clock=FrozenClock(T0),
    )


MESSAGE = (
    b"From: Loja <vendas@loja.example.com>\r\nTo: Maria <maria@example.com.br>\r\n"
    b"Cc: joao@example.org\r\nSubject: Pedido\r\nMessage-ID: <1@loja.example.com>\r\n"
    b"Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n\r\nSeu pedido chegou.\r\n"
)


def _shape(value: Any) -> Any:
    """``value`` with every alias reference replaced by the same placeholder."""
    if isinstance(value, dict):
        return {k: "<ref>" if k == "ref" else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def test_record_message_records_the_same_either_way(store: SQLStorage) -> None:
    assert isinstance(store, ParticipantsAppend)
    assert not isinstance(WithoutAppendMade(store), ParticipantsAppend)
    assert not isinstance(MemoryStorage(), ParticipantsAppend)
    recorded = []
    refs = []
    for storage, conversation in ((store, "order-1"), (WithoutAppendMade(store), "order-2")):
        tracker = tracker_on(storage)
        maria = tracker.mask("maria@example.com.br", conversation=conversation)
        loja = tracker.mask("vendas@loja.example.com", conversation=conversation, role="store")
        refs.append((loja.key, maria.key))
        recorded.append(tracker.record_message(conversation, MESSAGE, direction="outbound"))
    one_call, two_calls = recorded
    assert (one_call.name, one_call.at, one_call.dedup_key) == (
        two_calls.name,
        two_calls.at,
        two_calls.dedup_key,
    )
    assert _shape(one_call.data) == _shape(two_calls.data)
    for entry, (loja_key, maria_key) in zip(recorded, refs, strict=True):
        assert entry.data["from"][0]["ref"] == loja_key
        assert entry.data["to"][0]["ref"] == maria_key
        assert "maria@example.com.br" not in str(entry.data)
        assert entry.data["cc"] == [{"name": "", "address": "joao@example.org"}]


class Reentry(Exception):
    """A storage method was called while ``append_made``'s transaction was open."""


class NoReentry:
    """The same storage, refusing every other call while ``make`` runs in the write."""

    def __init__(self, inner: SQLStorage) -> None:
        self._inner = inner
        self._writing = threading.local()

    def append_made(
        self, conversation: str, *, store: str, make: Callable[[list[Alias]], TimelineEntry]
    ) -> tuple[TimelineEntry, bool]:
        def guarded(participants: list[Alias]) -> TimelineEntry:
            self._writing.on = True
            try:
                return make(participants)
            finally:
                self._writing.on = False

        return self._inner.append_made(conversation, store=store, make=guarded)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._writing, "on", False):
                raise Reentry(name)
            return found(*args, **kwargs)

        return call


def test_record_message_calls_no_storage_inside_the_write(store: SQLStorage) -> None:
    # make runs in the write transaction, with the in-memory database's guard held: a
    # storage call from it (a policy refresh through ``Tracker.domains``) would wait on
    # itself there, and take a second pooled connection elsewhere
    guarded = NoReentry(store)
    assert isinstance(guarded, ParticipantsAppend)
    clock = FrozenClock(T0)
    tracker = Tracker(
        storage=guarded,
        keys=[KEY],
        index_key=INDEX_KEY,
        default_policy=Policy(domain="ct.example.com"),
        clock=clock,
    )
    # first thing the tracker does (its policy copy has never been read), then again
    # once the copy is stale
    first = tracker.record_message("order-1", MESSAGE, direction="outbound")
    tracker.mask("maria@example.com.br", conversation="order-1")
    clock.advance(timedelta(minutes=5))
    second = tracker.record_message(
        "order-1", MESSAGE.replace(b"<1@", b"<2@"), direction="outbound"
    )
    messages = store.entries("order-1", store=DEFAULT_STORE)
    assert [e.seq for e in messages if e.kind is EntryKind.MESSAGE] == [first.seq, second.seq]


def test_record_message_on_one_pooled_connection(tmp_path: Path) -> None:
    # the participants and the policies cannot both hold a connection of a pool of one
    with SQLStorage(
        f"sqlite:///{tmp_path / 'one.db'}", pool_size=1, max_overflow=0, pool_timeout=5
    ) as storage:
        storage.upgrade()
        clock = FrozenClock(T0)
        tracker = Tracker(
            storage=storage,
            keys=[KEY],
            index_key=INDEX_KEY,
            default_policy=Policy(domain="ct.example.com"),
            clock=clock,
        )
        tracker.record_message("order-1", MESSAGE, direction="outbound")
        clock.advance(timedelta(minutes=5))
        again = tracker.record_message(
            "order-1", MESSAGE.replace(b"<1@", b"<2@"), direction="outbound"
        )
        assert again.seq is not None


# -- SQLite: the transaction sent straight on the sqlite3 connection ----------------------


def _made(dedup_key: str) -> Callable[[list[Alias]], TimelineEntry]:
    def make(participants: list[Alias]) -> TimelineEntry:
        refs = [alias.key for alias in participants]
        return make_entry(
            kind=EntryKind.MESSAGE,
            name="inbound",
            data={"refs": refs, "at": "x"},
            dedup_key=dedup_key,
        )

    return make


def test_the_direct_transaction_writes_what_sqlalchemy_writes(store: SQLStorage) -> None:
    alias = make_alias()
    store.get_or_create(alias, now=T0)
    with RoundTrips(store.engine) as trips:
        fast = [store.append_made("order-1", store="shop", make=_made(k)) for k in "aa"]
    first = ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    taken = ["BEGIN", "SELECT", "INSERT", "SELECT", "COMMIT"]  # then the entry that has the key
    assert trips.sent == [*first, *taken]
    with Statements(store) as seen, RoundTrips(store.engine) as slow_trips:
        slow = [store.append_made("order-1", store="shop", make=_made(k)) for k in "bb"]
    assert seen == ["BEGIN", "SELECT", "INSERT", "BEGIN", "SELECT", "INSERT", "SELECT"]
    assert slow_trips.sent == trips.sent
    assert [new for _, new in fast] == [new for _, new in slow] == [True, False]
    assert fast[0][0] == fast[1][0]
    for (entry, _), (other, _) in zip(fast, slow, strict=True):
        assert entry.data == other.data == {"refs": [alias.key], "at": "x"}
        assert entry.at == other.at == T0
        assert entry.at.tzinfo is UTC
        assert entry.seq is not None
    assert store.entries("order-1", store="shop") == [fast[0][0], slow[0][0]]


def test_a_failing_make_rolls_the_direct_transaction_back(store: SQLStorage) -> None:
    def broken(participants: list[Alias]) -> TimelineEntry:
        raise ValueError(len(participants))

    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        with pytest.raises(ValueError):
            store.append_made("order-1", store="shop", make=broken)
    finally:
        direct.unobserve(store.engine, sent.append)
    assert sent == ["BEGIN", "SELECT", "ROLLBACK"]
    assert store.append_made("order-1", store="shop", make=_made("a"))[1]  # the lock is free


def test_direct_transaction_errors_are_typed_and_hide_the_parameters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    with SQLStorage(url) as made:
        made.upgrade()
    with SQLStorage(url, prefix="missing_") as missing:
        with pytest.raises(StorageError) as caught:
            missing.append_made("order-secret", store="shop", make=_made("a"))
    assert caught.value.schema_missing
    assert not caught.value.transient
    assert "order-secret" not in str(caught.value)
    assert "order-secret" not in str(caught.value.__cause__)


def test_threads_record_each_message_once(store: SQLStorage) -> None:
    failures: list[BaseException] = []

    def record(n: int) -> None:
        try:
            for key in range(30):
                store.append_made("order-1", store="shop", make=_made(f"k{(key + n) % 30}"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    keys = [str(entry.dedup_key) for entry in store.entries("order-1", store="shop")]
    assert sorted(keys) == sorted(f"k{n}" for n in range(30))
