"""Group commit on SQLite: recordings that wait for the write lock together commit together.

``SQLStorage.append_made`` (how a relayed message is recorded) joins a group:
while one thread writes, the others queue; the next one to write takes every
unit waiting and runs each in a savepoint of one transaction, so one commit
(one ``fsync``) serves them all. Each caller returns only after the commit
that holds its write; a unit that fails is rolled back to its savepoint and
run again by itself, and the others' writes stay; when the group's
transaction itself is lost, every unit is run again by itself.

The tests hold the first writer inside its unit of work and release it once
the others are seen waiting (a condition that counts its waiters): no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ct_alias import Policy, Tracker
from ct_alias.aliases import Alias
from ct_alias.errors import StorageError
from ct_alias.storage.sql import SQLStorage, direct
from ct_alias.storage.sql.direct import DirectSQL, DirectWork
from ct_alias.storage.sql.transactions import Transactions
from ct_alias.testing import make_alias, make_entry
from ct_alias.timeline import EntryKind, TimelineEntry

from .sql_statements import Statements

WAIT = 30  # seconds: a safety net for a broken test, never reached when it works


class CountedCondition(threading.Condition):
    """A condition that tells, by a semaphore, each time a thread starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.release()  # the waiter holds the lock: nobody can notify it before it waits
        return super().wait(timeout)


def watched(transactions: Transactions, *, direct: bool = True) -> CountedCondition:
    """Count who waits for a group: of the writes sent directly, or of those through SQLAlchemy."""
    condition = CountedCondition()
    group = transactions._direct_group if direct else transactions._connection_group  # noqa: SLF001
    group.condition = condition
    return condition


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    url = f"sqlite:///{tmp_path / 'group.db'}" if request.param == "file" else "sqlite://"
    with SQLStorage(url) as opened:
        opened.upgrade()
        yield opened


def _made(
    dedup_key: str, *, hold: threading.Event | None = None, entered: threading.Event | None = None
) -> Callable[[list[Alias]], TimelineEntry]:
    def make(participants: list[Alias]) -> TimelineEntry:
        if entered is not None:
            entered.set()
        if hold is not None:
            assert hold.wait(WAIT)
        return make_entry(
            kind=EntryKind.MESSAGE,
            name="inbound",
            data={"refs": [alias.key for alias in participants]},
            dedup_key=dedup_key,
        )

    return make


def _failing(participants: list[Alias]) -> TimelineEntry:
    raise ValueError(f"no entry for {len(participants)} participants")


class Writers:
    """Threads each calling ``append_made`` once; what each returned or raised."""

    def __init__(self, store: SQLStorage) -> None:
        self.store = store
        self.threads: list[threading.Thread] = []
        self.results: dict[str, tuple[TimelineEntry, bool]] = {}
        self.errors: dict[str, BaseException] = {}
        self.threads_of: dict[str, set[int]] = {}

    def start(self, name: str, make: Callable[[list[Alias]], TimelineEntry]) -> None:
        def made(participants: list[Alias]) -> TimelineEntry:
            self.threads_of.setdefault(name, set()).add(threading.get_ident())
            return make(participants)

        def run() -> None:
            try:
                self.results[name] = self.store.append_made("order-1", store="shop", make=made)
            except BaseException as exc:  # reported by the test
                self.errors[name] = exc

        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive()


def test_waiting_recordings_commit_in_one_transaction_and_a_failing_one_loses_none(
    store: SQLStorage,
) -> None:
    alias = make_alias()
    store.get_or_create(alias, now=alias.created_at)
    condition = watched(store._transactions)  # noqa: SLF001
    hold, entered = threading.Event(), threading.Event()
    writers = Writers(store)
    sent: list[str] = []
    direct.observe(store.engine, sent.append)
    try:
        writers.start("first", _made("m0", hold=hold, entered=entered))
        assert entered.wait(WAIT)  # the first writes alone, held inside its transaction
        for name, make in (("b", _made("m1")), ("c", _failing), ("d", _made("m2"))):
            writers.start(name, make)
            assert condition.waits.acquire(timeout=WAIT)  # queued behind the first
        hold.set()
        writers.join()
    finally:
        direct.unobserve(store.engine, sent.append)
    assert set(writers.results) == {"first", "b", "d"}
    assert isinstance(writers.errors.pop("c"), ValueError)  # raised in its own caller
    assert writers.errors == {}
    alone = ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    unit = ["SAVEPOINT", "SELECT", "INSERT", "RELEASE"]
    failed = ["SAVEPOINT", "SELECT", "ROLLBACK", "RELEASE"]  # rolled back to its savepoint
    # the first alone; b, c and d in one transaction with one commit; c again, by itself
    assert sent == [
        *alone,
        "BEGIN",
        *unit,
        *failed,
        *unit,
        "COMMIT",
        "BEGIN",
        "SELECT",
        "ROLLBACK",
    ]
    # b's and d's units ran in one thread, the one that wrote the group
    assert len(writers.threads_of["b"] | writers.threads_of["d"]) == 1
    stored = store.entries("order-1", store="shop")
    assert [e.dedup_key for e in stored] == ["m0", "m1", "m2"]
    assert [writers.results[n][0] for n in ("first", "b", "d")] == stored
    assert all(new for _, new in writers.results.values())
    assert all(e.data == {"refs": [alias.key]} for e in stored)


def test_a_group_sees_its_own_writes_as_one_writer_after_another_would(store: SQLStorage) -> None:
    # two messages with the same id waiting together: written once, the second told so
    condition = watched(store._transactions)  # noqa: SLF001
    hold, entered = threading.Event(), threading.Event()
    writers = Writers(store)
    writers.start("first", _made("m0", hold=hold, entered=entered))
    assert entered.wait(WAIT)
    for name in ("b", "c"):
        writers.start(name, _made("same"))
        assert condition.waits.acquire(timeout=WAIT)
    hold.set()
    writers.join()
    assert writers.errors == {}
    (b, b_new), (c, c_new) = writers.results["b"], writers.results["c"]
    assert (b_new, c_new) == (True, False)
    assert b == c
    assert [e.dedup_key for e in store.entries("order-1", store="shop")] == ["m0", "same"]


def test_every_caller_returns_after_the_commit_that_holds_its_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    with SQLStorage(url) as store, SQLStorage(url) as reader:
        store.upgrade()
        condition = watched(store._transactions)  # noqa: SLF001
        hold, entered = threading.Event(), threading.Event()
        seen: dict[str, list[str | None]] = {}
        writers = Writers(store)
        writers.start("first", _made("m0", hold=hold, entered=entered))
        assert entered.wait(WAIT)
        for name in ("b", "c", "d"):
            writers.start(name, _made(name))
            assert condition.waits.acquire(timeout=WAIT)
        hold.set()
        writers.join()
        for name in ("first", "b", "c", "d"):
            entry, _ = writers.results[name]
            # another connection (another process would too) reads it: it was committed
            seen[name] = [
                e.dedup_key for e in reader.entries("order-1", store="shop") if e.seq == entry.seq
            ]
        assert seen == {"first": ["m0"], "b": ["b"], "c": ["c"], "d": ["d"]}
        with store.engine.connect() as conn:
            # the commit that returns is a durable one: SQLite's default, FULL (2), stays
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


# -- the group commit itself, on Transactions: a transaction lost mid-group ------------------

_CREATE = "CREATE TABLE items (name TEXT PRIMARY KEY)"
_INSERT = DirectSQL("INSERT INTO items (name) VALUES (?) RETURNING name", "INSERT", (), ("name",))
_END_IT_ALL = DirectSQL("ROLLBACK", "ROLLBACK", ())


def test_a_group_whose_transaction_is_lost_runs_every_unit_again_by_itself(
    tmp_path: Path,
) -> None:
    with SQLStorage(f"sqlite:///{tmp_path / 'lost.db'}") as storage:
        storage.upgrade()
        engine = storage.engine
        with engine.begin() as conn:
            conn.exec_driver_sql(_CREATE)
        transactions = Transactions(engine)
        condition = watched(transactions)
        hold, entered = threading.Event(), threading.Event()
        runs: list[str] = []
        results: dict[str, Any] = {}

        def unit(name: str, *, lose: bool = False) -> Callable[[DirectWork], Any]:
            def work(conn: DirectWork) -> Any:
                runs.append(name)
                if name == "first":
                    entered.set()
                    assert hold.wait(WAIT)
                row = conn.fetch_one(_INSERT, {"name": name})
                if lose and runs.count(name) == 1:
                    conn.send(_END_IT_ALL)  # as SQLite does on some errors: all is rolled back
                    raise OSError("the disk is full")
                return row

            return work

        def fallback(conn: Any) -> Any:
            raise AssertionError("SQLite goes direct")

        def call(name: str, work: Callable[[DirectWork], Any]) -> threading.Thread:
            def run() -> None:
                results[name] = transactions.write_direct(
                    "testing", work, fallback, retry_lost=True, group=True
                )

            thread = threading.Thread(target=run)
            thread.start()
            return thread

        threads = [call("first", unit("first"))]
        assert entered.wait(WAIT)
        for name in ("b", "c", "d"):
            threads.append(call(name, unit(name, lose=name == "c")))
            assert condition.waits.acquire(timeout=WAIT)
        hold.set()
        for thread in threads:
            thread.join(WAIT)
        # b was written in the group before c lost the transaction: it is written again
        assert runs[:3] == ["first", "b", "c"]
        assert sorted(runs[3:]) == ["b", "c", "d"]
        assert results == {name: (name,) for name in ("first", "b", "c", "d")}
        with engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM items ORDER BY name").scalars().all()
        assert names == ["b", "c", "d", "first"]


def test_a_unit_that_may_not_run_twice_is_never_grouped(tmp_path: Path) -> None:
    with SQLStorage(f"sqlite:///{tmp_path / 'once.db'}") as storage:
        transactions = Transactions(storage.engine)
        with pytest.raises(ValueError, match="run again"):
            transactions.write_direct(
                "testing", lambda conn: None, lambda conn: None, retry_lost=False, group=True
            )


# -- writes through SQLAlchemy (a mask's transaction): the same group commit ----------------------

_INSERT_TEXT = "INSERT INTO items (name) VALUES (?)"


def _items(tmp_path: Path) -> tuple[SQLStorage, Transactions]:
    storage = SQLStorage(f"sqlite:///{tmp_path / 'items.db'}")
    storage.upgrade()
    with storage.engine.begin() as conn:
        conn.exec_driver_sql(_CREATE)
    return storage, Transactions(storage.engine)


def test_sqlalchemy_writes_waiting_together_commit_together_and_a_failing_one_loses_none(
    tmp_path: Path,
) -> None:
    storage, transactions = _items(tmp_path)
    with storage:
        condition = watched(transactions, direct=False)
        hold, entered = threading.Event(), threading.Event()
        results: dict[str, Any] = {}
        errors: dict[str, BaseException] = {}

        def unit(name: str, *, row: str | None = None) -> Callable[[Any], str]:
            def work(conn: Any) -> str:
                if name == "first":
                    entered.set()
                    assert hold.wait(WAIT)
                conn.exec_driver_sql(_INSERT_TEXT, (row or name,))
                return name

            return work

        def call(name: str, work: Callable[[Any], str]) -> threading.Thread:
            def run() -> None:
                try:
                    results[name] = transactions.run(
                        "testing", work, write=True, retry_lost=True, group=True
                    )
                except BaseException as exc:  # reported by the test
                    errors[name] = exc

            thread = threading.Thread(target=run)
            thread.start()
            return thread

        with Statements(storage) as seen:
            threads = [call("first", unit("first"))]
            assert entered.wait(WAIT)
            for name, row in (("b", None), ("c", "first"), ("d", None)):  # c: a taken key
                threads.append(call(name, unit(name, row=row)))
                assert condition.waits.acquire(timeout=WAIT)
            hold.set()
            for thread in threads:
                thread.join(WAIT)
        assert results == {"first": "first", "b": "b", "d": "d"}
        assert isinstance(errors.pop("c"), StorageError)  # raised in its own caller
        assert errors == {}
        group = ["SAVEPOINT", "INSERT", "RELEASE"]
        failed = ["SAVEPOINT", "INSERT", "ROLLBACK", "RELEASE"]
        # the first alone; b, c and d in one transaction; c again, by itself
        assert seen == [
            "BEGIN",
            "INSERT",
            "BEGIN",
            *group,
            *failed,
            *group,
            "BEGIN",
            "INSERT",
        ]
        with storage.engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM items ORDER BY name").scalars().all()
        assert names == ["b", "d", "first"]


def test_masks_waiting_together_commit_together(tmp_path: Path) -> None:
    with SQLStorage(f"sqlite:///{tmp_path / 'masks.db'}") as store:
        store.upgrade()
        tracker = Tracker(
            storage=store,
            keys=[
                "pq-hi3K_bA1VUPr9Y4T48XB5zYYV39gOOoiT5ixPtjQ"
            ],  # secrets.token_urlsafe(32), for this test
            index_key="MIFn91umwESY8ERJ2gGqY2HPhBRAXrFk40YiftFU7JI",
            default_policy=Policy(domain="ct.example.com"),
        )
        condition = watched(store._transactions, direct=False)  # noqa: SLF001
        hold, entered = threading.Event(), threading.Event()

        def held(conn: Any) -> None:
            del conn
            entered.set()
            assert hold.wait(WAIT)

        first = threading.Thread(
            target=store._transactions.run,  # noqa: SLF001
            args=("holding the lock", held),
            kwargs={"write": True, "retry_lost": True, "group": True},
        )
        masked: dict[str, str] = {}

        def mask(name: str) -> None:
            masked[name] = tracker.mask(f"{name}@example.com", conversation="order-1").address

        with Statements(store) as seen:
            first.start()
            assert entered.wait(WAIT)
            threads = [threading.Thread(target=mask, args=(name,)) for name in ("ana", "bia")]
            for thread in threads:
                thread.start()
                assert condition.waits.acquire(timeout=WAIT)
            hold.set()
            for thread in [first, *threads]:
                thread.join(WAIT)
        assert sorted(masked) == ["ana", "bia"]
        writes = seen[seen.index("BEGIN", 1) :]  # after the first's transaction
        assert writes.count("BEGIN") == 1  # both masks in one transaction, one commit
        assert writes.count("SAVEPOINT") == writes.count("RELEASE") == 2
        for name, address in masked.items():
            assert tracker.unmask(address).real_address == f"{name}@example.com"


def test_recordings_through_sqlalchemy_are_grouped_too(tmp_path: Path) -> None:
    # a host's statement listener sends the recording through SQLAlchemy: grouped the same way
    with SQLStorage(f"sqlite:///{tmp_path / 'watched.db'}") as store:
        store.upgrade()
        condition = watched(store._transactions, direct=False)  # noqa: SLF001
        hold, entered = threading.Event(), threading.Event()
        writers = Writers(store)
        with Statements(store) as seen:
            writers.start("first", _made("m0", hold=hold, entered=entered))
            assert entered.wait(WAIT)
            for name in ("b", "c"):
                writers.start(name, _made(name))
                assert condition.waits.acquire(timeout=WAIT)
            hold.set()
            writers.join()
        assert writers.errors == {}
        assert seen.count("BEGIN") == 2  # the first alone, then b and c together
        assert seen.count("SAVEPOINT") == 2
        assert [e.dedup_key for e in store.entries("order-1", store="shop")] == ["m0", "b", "c"]
