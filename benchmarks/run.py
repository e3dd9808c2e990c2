#!/usr/bin/env python
"""ct_alias benchmarks: each project figure next to a floor measured in the same run.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # fewer repeats, smaller sizes (< 45 s)
    python benchmarks/run.py --json     # rows as JSON

A *floor* is the cheapest honest way to do the essential work without the
library (one HMAC and a dict lookup for an unmask, email-validator alone for a
mask, srslib for a stateless signed address). Ratios, not absolute times, are
what the goals are about: both sides are measured on the same machine in the
same run, as the minimum over several repeats (the least-disturbed run).
"""

from __future__ import annotations

import argparse
import email.policy
import hmac
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import srslib
from email_validator import validate_email
from itsdangerous import TimestampSigner

from ct_alias import (
    CtAliasError,
    FrozenClock,
    MemoryStorage,
    Policy,
    Role,
    Storage,
    Tracker,
)
from ct_alias.auth import AuthenticationResults
from ct_alias.codec import COMPLEX_V1, AliasCodec
from ct_alias.relay import Relay
from ct_alias.storage.sql import SQLStorage
from ct_alias.testing import CountingStorage, make_alias

T = TypeVar("T")

START = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "ct.example.com"


@dataclass
class Row:
    """One line of the table."""

    name: str
    project_us: float
    floor: str
    floor_us: float
    goal: float | None
    ratio: float = 0.0
    met: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        self.ratio = self.project_us / self.floor_us if self.floor_us else float("inf")
        self.met = None if self.goal is None else self.ratio <= self.goal


@dataclass
class Config:
    """Sizes and repeats; ``--quick`` shrinks them."""

    quick: bool

    @property
    def repeat(self) -> int:
        return 5 if self.quick else 9

    def n(self, full: int) -> int:
        return max(1, full // 10) if self.quick else full


def make_tracker(store: Storage | None = None, clock: FrozenClock | None = None) -> Tracker:
    return Tracker(
        storage=store if store is not None else MemoryStorage(),
        keys=[
            "kwzgX0ycK73qBMPlbkOCXl3FB8CvQ-VDNT3YUD9wVBI",
            "S1alFPqm6IPF4kPzkv71megAVcJ58WFIXHnKs30iOyc",
        ],
        default_policy=Policy(domain=DOMAIN),
        clock=clock or FrozenClock(START),
        index_key="RlVDtbvVeYHoXaoJjbCQ7pE_XLqAg_FTFCaeviUGsO4",
    )


def addresses(count: int, prefix: str = "customer") -> list[str]:
    return [f"{prefix}.{i}@shop-{i % 97}.example.com.br" for i in range(count)]


# -- benchmarks ----------------------------------------------------------------


def one_pass(fn: Callable[[T], object], inputs: Sequence[T]) -> float:
    """Mean µs per call of ``fn`` over ``inputs``, once."""
    start = time.perf_counter()
    for item in inputs:
        fn(item)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def paired(repeat: int, *passes: Callable[[], float]) -> list[float]:
    """Run the passes round-robin ``repeat`` times; the minimum of each.

    Interleaving puts a figure and its floor under the same conditions on a
    noisy (shared, virtual) machine, which separate runs do not.
    """
    for run in passes:  # warm up
        run()
    best = [float("inf")] * len(passes)
    for _ in range(repeat):
        for i, run in enumerate(passes):
            best[i] = min(best[i], run())
    return best


def bench_codec(cfg: Config) -> Iterable[Row]:
    n = cfg.n(20_000)
    codec = AliasCodec(
        [
            "kwzgX0ycK73qBMPlbkOCXl3FB8CvQ-VDNT3YUD9wVBI",
            "S1alFPqm6IPF4kPzkv71megAVcJ58WFIXHnKs30iOyc",
        ]
    )
    expires = START + timedelta(days=60)
    bind = DOMAIN.encode()
    tokens = [codec.encode(COMPLEX_V1, expires, bind=bind) for _ in range(n)]
    srs = srslib.SRS("benchmark-key-2", prev_secrets=["benchmark-key-1"])
    senders = addresses(n)
    forwarded = [srs.forward(s, DOMAIN) for s in senders]
    signer = TimestampSigner(["benchmark-key-1", "benchmark-key-2"])
    signed = [signer.sign(s) for s in senders]

    encode, srs_fwd, sign = paired(
        cfg.repeat,
        lambda: one_pass(lambda _: codec.encode(COMPLEX_V1, expires, bind=bind), tokens),
        lambda: one_pass(lambda s: srs.forward(s, DOMAIN), senders),
        lambda: one_pass(signer.sign, senders),
    )
    decode, srs_rev, unsign = paired(
        cfg.repeat,
        lambda: one_pass(lambda t: codec.decode(COMPLEX_V1, t, bind=bind), tokens),
        lambda: one_pass(srs.reverse, forwarded),
        lambda: one_pass(lambda s: signer.unsign(s, max_age=86400 * 60), signed),
    )
    yield Row("codec encode", encode, "srslib SRS forward", srs_fwd, 1.0)
    yield Row("codec decode+verify", decode, "srslib SRS reverse", srs_rev, 1.0)
    yield Row("codec encode", encode, "itsdangerous TimestampSigner.sign", sign, None)
    yield Row("codec decode+verify", decode, "itsdangerous TimestampSigner.unsign", unsign, None)


def bench_mask(cfg: Config) -> Iterable[Row]:
    n = cfg.n(10_000)
    inputs = addresses(n)

    def new_addresses() -> float:
        tracker = make_tracker()
        return one_pass(lambda a: tracker.mask(a, conversation="order-1"), inputs)

    tracker = make_tracker()
    for a in inputs:
        tracker.mask(a, conversation="order-1")
    project, again, floor = paired(
        cfg.repeat,
        new_addresses,
        lambda: one_pass(lambda a: tracker.mask(a, conversation="order-1"), inputs),
        lambda: one_pass(lambda a: validate_email(a, check_deliverability=False), inputs),
    )
    yield Row("mask, new address (memory)", project, "email_validator.validate_email", floor, 1.5)
    yield Row("mask, existing alias (memory)", again, "email_validator.validate_email", floor, None)


def bench_unmask(cfg: Config) -> Iterable[Row]:
    n = cfg.n(10_000)
    store = CountingStorage()
    clock = FrozenClock(START)
    tracker = make_tracker(store, clock)
    aliases = [tracker.mask(a, conversation="order-1").address for a in addresses(n)]

    key = os.urandom(32)
    table = {}
    messages = []
    for a in aliases:
        message = a.encode()
        table[message] = a
        messages.append((message, hmac.digest(key, message, "sha256")[:10]))

    def floor_fn(item: tuple[bytes, bytes]) -> object:
        message, mac = item
        if not hmac.compare_digest(hmac.digest(key, message, "sha256")[:10], mac):
            raise ValueError
        return table[message]

    project, floor = paired(
        cfg.repeat,
        lambda: one_pass(tracker.unmask, aliases),
        lambda: one_pass(floor_fn, messages),
    )
    yield Row("unmask (memory)", project, "HMAC-SHA256 verify + dict lookup", floor, 3.0)

    forged = [a[:5] + ("0" if a[5] != "0" else "1") + a[6:] for a in aliases]

    def reject(a: object) -> None:
        try:
            tracker.unmask(a)  # type: ignore[arg-type]
        except CtAliasError:
            return
        raise AssertionError("accepted a forged alias")

    store.calls.clear()
    forged_us, forged_floor = paired(
        cfg.repeat, lambda: one_pass(reject, forged), lambda: one_pass(floor_fn, messages)
    )
    forged_lookups = store.calls["get"]
    clock.advance(timedelta(days=61))
    expired_us, expired_floor = paired(
        cfg.repeat, lambda: one_pass(reject, aliases), lambda: one_pass(floor_fn, messages)
    )
    expired_lookups = store.calls["get"] - forged_lookups
    yield Row(
        "reject forged alias",
        forged_us,
        "HMAC-SHA256 verify + dict lookup",
        forged_floor,
        None,
        note=f"storage lookups: {forged_lookups}",
    )
    yield Row(
        "reject expired alias",
        expired_us,
        "HMAC-SHA256 verify + dict lookup",
        expired_floor,
        None,
        note=f"storage lookups: {expired_lookups}",
    )


# -- SQL store ------------------------------------------------------------------

SQL_POSTGRES_URL = os.environ.get(
    "CT_ALIAS_BENCH_POSTGRES_URL",
    os.environ.get(
        "CT_ALIAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)


def sql_targets(tmp: str) -> list[tuple[str, str | None, str]]:
    """(label, URL or None when unreachable, note) for SQLite in ``tmp`` and PostgreSQL."""
    targets: list[tuple[str, str | None, str]] = [
        ("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", "file in a tmp dir, WAL")
    ]
    engine = sa.create_engine(SQL_POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        targets.append(("postgresql", SQL_POSTGRES_URL, "localhost"))
    except sa.exc.DBAPIError as exc:
        targets.append(("postgresql", None, f"skipped: unreachable ({type(exc).__name__})"))
    finally:
        engine.dispose()
    return targets


def sql_store(url: str) -> SQLStorage:
    """A fresh SQLStorage on ``url`` with tables under a unique prefix (dropped by sql_drop)."""
    store = SQLStorage(url, prefix=f"bench_{os.urandom(4).hex()}_")
    store.upgrade()
    return store


def sql_drop(store: SQLStorage) -> None:
    store.tables.metadata.drop_all(store.engine)
    store.close()


def in_threads(count: int, work: Callable[[int], object]) -> float:
    """Run ``work(i)`` in ``count`` threads started together; the wall time in seconds."""
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def bench_sql_unmask(cfg: Config) -> Iterable[Row]:
    n = cfg.n(3_000)
    with tempfile.TemporaryDirectory() as tmp:
        for label, url, note in sql_targets(tmp):
            name = f"unmask (SQLStorage, {label})"
            floor_name = "SQLAlchemy Core select by key, pooled"
            if url is None:
                yield Row(name, float("nan"), floor_name, float("nan"), 2.0, note=note)
                continue
            store = sql_store(url)
            try:
                tracker = make_tracker(store)
                aliases = [tracker.mask(a, conversation="order-1").address for a in addresses(n)]

                table = store.tables.aliases
                with store.engine.connect() as conn:
                    keys = list(conn.execute(sa.select(table.c.key)).scalars())
                bare = sa.create_engine(url)  # no pre-ping, no retries, no conversion
                query = sa.select(table).where(table.c.key == sa.bindparam("key"))

                def floor_fn(key: object, bare: sa.Engine = bare, query: object = query) -> object:
                    with bare.connect() as conn:
                        return conn.execute(query, {"key": key}).first()  # type: ignore[call-overload]

                project, floor = paired(
                    cfg.repeat,
                    lambda t=tracker, a=aliases: one_pass(t.unmask, a),  # type: ignore[misc]
                    lambda f=floor_fn, k=keys: one_pass(f, k),  # type: ignore[misc]
                )
                bare.dispose()
                yield Row(name, project, floor_name, floor, 2.0, note=f"{n} aliases; {note}")
            finally:
                sql_drop(store)


def bench_sql_mask(cfg: Config) -> Iterable[Row]:
    threads = 8
    n = max(threads, cfg.n(2_000)) // threads * threads
    per_thread = n // threads
    with tempfile.TemporaryDirectory() as tmp:
        for label, url, note in sql_targets(tmp):
            name = f"mask, new address, {threads} threads ({label})"
            floor_name = f"bare INSERT+COMMIT, {threads} threads"
            if url is None:
                yield Row(name, float("nan"), floor_name, float("nan"), None, note=note)
                continue
            store = sql_store(url)
            try:
                tracker = make_tracker(store)
                inputs = addresses(n)

                def mask(i: int, tracker: Tracker = tracker, inputs: list[str] = inputs) -> None:
                    for address in inputs[i * per_thread : (i + 1) * per_thread]:
                        tracker.mask(address, conversation=f"order-{i}")

                project_s = in_threads(threads, mask)
                table = store.tables.aliases
                rows = [
                    {
                        "key": a.key,
                        "slot": a.slot,
                        "address": a.address,
                        "real_address": a.real_address,
                        "conversation": a.conversation,
                        "store": a.store,
                        "role": a.role.value,
                        "strategy": a.strategy,
                        "created_at": a.created_at,
                        "expires_at": a.expires_at,
                        "status": a.status.value,
                    }
                    for a in (make_alias(conversation=f"bare-{i}") for i in range(n))
                ]
                bare = sa.create_engine(url, pool_size=threads)
                insert = table.insert()

                def insert_rows(
                    i: int, bare: sa.Engine = bare, insert: object = insert, rows: list[Any] = rows
                ) -> None:
                    for row in rows[i * per_thread : (i + 1) * per_thread]:
                        with bare.begin() as conn:
                            conn.execute(insert, row)  # type: ignore[call-overload]

                floor_s = in_threads(threads, insert_rows)
                bare.dispose()
                yield Row(
                    name,
                    project_s / n * 1e6,
                    floor_name,
                    floor_s / n * 1e6,
                    None,
                    note=f"{n / project_s:,.0f} masks/s vs {n / floor_s:,.0f} inserts/s; {note}",
                )
            finally:
                sql_drop(store)


# -- messages and the relay ----------------------------------------------------------------


def order_message(size: int, *, to: str = "cliente@example.com.br") -> bytes:
    """A store e-mail of about ``size`` bytes: a short text part plus a PDF attachment."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = "Transportadora <rastreio@transportadora.example.net>"
    message["To"] = to
    message["Subject"] = "Sua nota fiscal"
    message["Message-ID"] = f"<{os.urandom(8).hex()}@transportadora.example.net>"
    message.set_content("Segue a nota fiscal do seu pedido.\n\nObrigado!\n")
    pdf = b"%PDF-1.4\n" + os.urandom(max(0, size * 3 // 4 - 600))
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="nota.pdf")
    return message.as_bytes()


def kb(data: bytes) -> str:
    """A message's size for a label: ``"0.9 KB"``, ``"1026 KB"``."""
    size = len(data) / 1024
    return f"{size:.1f} KB" if size < 10 else f"{size:.0f} KB"


def stdlib_parse_and_serialise(data: object) -> object:
    return BytesParser(policy=email.policy.SMTP).parsebytes(data).as_bytes()  # type: ignore[arg-type]


def bench_messages(cfg: Config) -> Iterable[Row]:
    small, large = order_message(10_000), order_message(1_000_000)
    tracker = make_tracker()
    tracker.mask("cliente@example.com.br", conversation="order-1")
    counter = iter(range(10**9))

    def record(data: object) -> object:
        # a fresh conversation per call, so de-duplication never short-cuts the work
        return tracker.record_message(f"o{next(counter)}", data, direction="outbound")  # type: ignore[arg-type]

    n_small, n_large = cfg.n(400), cfg.n(60)
    parse = BytesParser(policy=email.policy.SMTP).parsebytes
    small_us, large_us, std_small, std_large = paired(
        cfg.repeat,
        lambda: one_pass(record, [small] * n_small),
        lambda: one_pass(record, [large] * n_large),
        lambda: one_pass(parse, [small] * n_small),
        lambda: one_pass(parse, [large] * n_large),
    )
    yield Row(
        f"record_message {kb(large)}",
        large_us,
        f"record_message {kb(small)}",
        small_us,
        5.0,
        note="text part + PDF attachment",
    )
    yield Row(
        f"stdlib BytesParser {kb(large)}",
        std_large,
        f"stdlib BytesParser {kb(small)}",
        std_small,
        None,
        note="what a full parse would cost",
    )


#: The receiving MTA whose verdicts the benchmark relay trusts.
MTA = "mx.ct.example.com"
VERDICT = f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"


def bench_relay(cfg: Config) -> Iterable[Row]:
    tracker = make_tracker()
    customer = tracker.mask("cliente@example.com.br", conversation="order-1")
    relay = Relay(tracker, authenticator=AuthenticationResults(MTA), max_size=4 * 1024 * 1024)
    # authenticated, as real carrier mail is: the sender is given its contact alias
    small = VERDICT.encode() + order_message(1_500, to=customer.address)
    large = VERDICT.encode() + order_message(1_000_000, to=customer.address)
    sender = "rastreio@transportadora.example.net"

    def handle(data: object) -> object:
        (outcome,) = relay.handle(sender, [customer.address], data).outcomes  # type: ignore[arg-type]
        if not outcome.accepted:
            raise AssertionError(outcome)
        relay.delivered(outcome)  # recorded once handed off, as `serve` does
        return outcome

    n_small, n_large = cfg.n(400), cfg.n(60)
    small_us, large_us, std_small, std_large = paired(
        cfg.repeat,
        lambda: one_pass(handle, [small] * n_small),
        lambda: one_pass(handle, [large] * n_large),
        lambda: one_pass(stdlib_parse_and_serialise, [small] * n_small),
        lambda: one_pass(stdlib_parse_and_serialise, [large] * n_large),
    )
    yield Row(
        f"relay.handle {kb(large)}",
        large_us,
        f"relay.handle {kb(small)}",
        small_us,
        3.0,
        note="cost must not grow with the body",
    )
    yield Row(
        f"relay.handle {kb(small)}",
        small_us,
        "stdlib parse + as_bytes, same message",
        std_small,
        None,
    )
    yield Row(
        f"relay.handle {kb(large)}",
        large_us,
        "stdlib parse + as_bytes, same message",
        std_large,
        None,
    )


def bench_relay_cc(cfg: Config) -> Iterable[Row]:
    """A message to 1,000 ``Cc`` addresses against the same message to one, on SQLite."""
    with tempfile.TemporaryDirectory(prefix="ct-alias-bench-") as tmp:
        storage = SQLStorage(f"sqlite:///{Path(tmp) / 'relay.db'}")
        storage.upgrade()
        try:
            tracker = make_tracker(storage)
            customer = tracker.mask("cliente@example.com.br", conversation="order-1")
            tracker.mask("vendas@loja.example.com", conversation="order-1", role=Role.STORE)
            relay = Relay(tracker, authenticator=AuthenticationResults(MTA))
            counter = iter(range(10**9))

            def message(cc: str) -> bytes:
                return (
                    f"{VERDICT}From: Transportadora <rastreio@transportadora.example.net>\r\n"
                    f"To: {customer.address}\r\nCc: {cc}\r\nSubject: Entrega\r\n"
                    f"Message-ID: <{next(counter)}@transportadora.example.net>\r\n\r\n"
                    "Sua entrega chega amanha.\r\n"
                ).encode()

            def handle(data: bytes) -> object:
                (outcome,) = relay.handle(
                    "rastreio@transportadora.example.net", [customer.address], data
                ).outcomes
                if not outcome.accepted:
                    raise AssertionError(outcome)
                return relay.delivered(outcome)

            def many() -> str:  # a new list each time: no cache may remember it
                batch = next(counter)
                return ", ".join(f"pessoa{i}.{batch}@example.org" for i in range(1000))

            n = cfg.n(100)
            one_cc, thousand_cc = paired(
                cfg.repeat,
                lambda: one_pass(handle, [message("vendas@loja.example.com") for _ in range(n)]),
                lambda: one_pass(handle, [message(many()) for _ in range(n)]),
            )
        finally:
            storage.close()
    yield Row(
        "relay.handle + delivered, 1,000 Cc (SQLite)",
        thousand_cc,
        "same, 1 Cc",
        one_cc,
        10.0,
        note="scrubbing is O(fields + participants)",
    )


# -- how costs grow ----------------------------------------------------------------------


def bench_scale(cfg: Config) -> Iterable[Row]:
    sizes = [10**3, 10**4, 10**5] if cfg.quick else [10**3, 10**5, 10**6]
    n = cfg.n(5_000)
    # memory: pad the store with synthetic records; lookups must not slow down
    unmasks: list[Callable[[], float]] = []
    for size in sizes:
        store = MemoryStorage()
        tracker = make_tracker(store)
        aliases = [tracker.mask(a, conversation="o").address for a in addresses(min(n, size))]
        filler = next(iter(store._aliases.values()))  # noqa: SLF001 - pads storage with filler records
        store._aliases.update((os.urandom(16).hex(), filler) for _ in range(size - len(store)))  # noqa: SLF001 - pads storage with filler records
        unmasks.append(partial(one_pass, tracker.unmask, aliases))
    results = dict(zip(sizes, paired(cfg.repeat, *unmasks), strict=True))
    del unmasks
    for size in sizes[1:]:
        yield Row(
            f"unmask (memory), {size:,} aliases",
            results[size],
            f"unmask (memory), {sizes[0]:,} aliases",
            results[sizes[0]],
            1.5,
            note="must stay flat",
        )
    yield from _sql_scale(cfg, sizes, n)


def _sql_scale(cfg: Config, sizes: list[int], n: int) -> Iterable[Row]:
    unmasks: list[Callable[[], float]] = []
    stores: list[SQLStorage] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            store = SQLStorage(f"sqlite:///{Path(tmp) / f'scale-{size}.db'}")
            store.upgrade()
            tracker = make_tracker(store)
            aliases = [tracker.mask(a, conversation="o").address for a in addresses(min(n, 2000))]
            table = store.tables.aliases
            template = make_alias()
            with store.engine.begin() as conn:
                for start in range(len(aliases), size, 50_000):
                    batch = min(50_000, size - start)
                    conn.execute(
                        table.insert(),
                        [
                            {
                                "key": os.urandom(16).hex(),
                                "slot": None,
                                "address": template.address,
                                "real_address": template.real_address,
                                "conversation": f"f{i % 997}",
                                "store": "s",
                                "role": "customer",
                                "strategy": "complex",
                                "created_at": template.created_at,
                                "expires_at": template.expires_at,
                                "status": "active",
                            }
                            for i in range(batch)
                        ],
                    )
            unmasks.append(partial(one_pass, tracker.unmask, aliases))
            stores.append(store)
        results = dict(zip(sizes, paired(cfg.repeat, *unmasks), strict=True))
        for store in stores:
            store.close()
    for size in sizes[1:]:
        yield Row(
            f"unmask (SQLite), {size:,} aliases",
            results[size],
            f"unmask (SQLite), {sizes[0]:,} aliases",
            results[sizes[0]],
            1.5,
            note="must stay flat",
        )


# -- addresses encrypted at rest ----------------------------------------------------------------


def bench_crypto(cfg: Config) -> Iterable[Row]:
    n = cfg.n(3_000)
    inputs = addresses(n)
    chunks = [inputs[i : i + max(1, n // 10)] for i in range(0, n, max(1, n // 10))]
    with tempfile.TemporaryDirectory() as tmp:
        trackers: dict[bool, Tracker] = {}
        stores: list[SQLStorage] = []
        for encrypted in (False, True):
            store = SQLStorage(f"sqlite:///{Path(tmp) / f'crypto-{encrypted}.db'}")
            store.upgrade()
            stores.append(store)
            trackers[encrypted] = Tracker(
                storage=store,
                keys=["eTPLM-5amqNDEoTC4ckxu0w8o1E4wDMvfsXwUWVUOCw"],
                default_policy=Policy(domain=DOMAIN),
                clock=FrozenClock(START),
                index_key="RlVDtbvVeYHoXaoJjbCQ7pE_XLqAg_FTFCaeviUGsO4",
                address_keys=["benchmark-address-key"] if encrypted else None,
            )
        # each mask writes once: interleave the two trackers chunk by chunk instead
        mask_seconds = dict.fromkeys((False, True), 0.0)
        aliases: dict[bool, list[str]] = {False: [], True: []}
        for chunk in chunks:
            for encrypted, tracker in trackers.items():
                start = time.perf_counter()
                aliases[encrypted] += [
                    tracker.mask(a, conversation="order-1").address for a in chunk
                ]
                mask_seconds[encrypted] += time.perf_counter() - start
        plain_us, sealed_us = paired(
            cfg.repeat,
            lambda: one_pass(trackers[False].unmask, aliases[False]),
            lambda: one_pass(trackers[True].unmask, aliases[True]),
        )
        measured = {
            False: (mask_seconds[False] / n * 1e6, plain_us),
            True: (mask_seconds[True] / n * 1e6, sealed_us),
        }
        for store in stores:
            store.close()
    yield Row(
        "unmask (SQLite), encrypted addresses",
        measured[True][1],
        "unmask (SQLite), plaintext",
        measured[False][1],
        1.25,
    )
    yield Row(
        "mask, new address (SQLite), encrypted",
        measured[True][0],
        "mask, new address (SQLite), plaintext",
        measured[False][0],
        None,
        note="one pass, interleaved in chunks (each mask writes)",
    )


BENCHMARKS: dict[str, Callable[[Config], Iterable[Row]]] = {
    "codec": bench_codec,
    "mask": bench_mask,
    "unmask": bench_unmask,
    "sql-unmask": bench_sql_unmask,
    "sql-mask": bench_sql_mask,
    "messages": bench_messages,
    "relay": bench_relay,
    "relay-cc": bench_relay_cc,
    "scale": bench_scale,
    "crypto": bench_crypto,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs"
    )


def render(rows: list[Row]) -> str:
    header = ("benchmark", "project µs", "floor", "floor µs", "ratio", "goal", "met", "note")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.name,
                f"{r.project_us:.2f}",
                r.floor,
                f"{r.floor_us:.2f}",
                f"{r.ratio:.2f}x",
                "-" if r.goal is None else f"<= {r.goal:g}x",
                "-" if r.met is None else ("yes" if r.met else "NO"),
                r.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("only", nargs="*", choices=[[], *BENCHMARKS], help="benchmarks to run")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick)
    rows: list[Row] = []
    started = time.perf_counter()
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        rows.extend(bench(cfg))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(f"machine: {machine()}")
        print(
            f"mode: {'quick' if cfg.quick else 'full'}, min of {cfg.repeat} repeats, "
            f"{time.perf_counter() - started:.1f} s\n"
        )
        print(render(rows))
        missed = [r for r in rows if r.met is False]
        if missed:
            print(
                "\ngoals missed: "
                + "; ".join(f"{r.name} vs {r.floor} ({r.ratio:.2f}x)" for r in missed)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
