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
import hmac
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import srslib
from email_validator import validate_email
from itsdangerous import TimestampSigner

from ct_alias import (
    Alias,
    AliasCodec,
    CtAliasError,
    FrozenClock,
    MemoryStore,
    Policy,
    Tracker,
)
from ct_alias.codec import COMPLEX_V1

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
        return 3 if self.quick else 7

    def n(self, full: int) -> int:
        return max(1, full // 10) if self.quick else full


def per_call_us(fn: Callable[[object], object], inputs: Sequence[object], repeat: int) -> float:
    """The minimum over ``repeat`` runs of the mean µs per call of ``fn`` over ``inputs``."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        runs.append((time.perf_counter() - start) / len(inputs) * 1e6)
    return min(runs)


def once_each_us(
    make_fn: Callable[[], Callable[[object], object]], inputs: Sequence[object], repeat: int
) -> float:
    """Like :func:`per_call_us` for calls that change state: a fresh ``fn`` per run."""
    runs = []
    for _ in range(repeat):
        fn = make_fn()
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        runs.append((time.perf_counter() - start) / len(inputs) * 1e6)
    return min(runs)


class CountingStore(MemoryStore):
    """A memory store that counts lookups (to prove rejections make none)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def get(self, key: str) -> Alias | None:
        self.lookups += 1
        return super().get(key)


def make_tracker(store: MemoryStore | None = None, clock: FrozenClock | None = None) -> Tracker:
    return Tracker(
        store=store if store is not None else MemoryStore(),
        keys=["benchmark-key-1", "benchmark-key-2"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock or FrozenClock(START),
        index_key="benchmark-index",
    )


def addresses(count: int, prefix: str = "customer") -> list[str]:
    return [f"{prefix}.{i}@shop-{i % 97}.example.com.br" for i in range(count)]


# -- benchmarks ----------------------------------------------------------------


def bench_codec(cfg: Config) -> Iterable[Row]:
    n = cfg.n(20_000)
    codec = AliasCodec(["benchmark-key-1", "benchmark-key-2"])
    expires = START + timedelta(days=60)
    bind = DOMAIN.encode()
    tokens = [codec.encode(COMPLEX_V1, expires, bind=bind) for _ in range(n)]
    srs = srslib.SRS("benchmark-key-2", prev_secrets=["benchmark-key-1"])
    senders = addresses(n)
    forwarded = [srs.forward(s, DOMAIN) for s in senders]
    signer = TimestampSigner(["benchmark-key-1", "benchmark-key-2"])
    signed = [signer.sign(s) for s in senders]

    encode = per_call_us(lambda _: codec.encode(COMPLEX_V1, expires, bind=bind), tokens, cfg.repeat)
    decode = per_call_us(lambda t: codec.decode(COMPLEX_V1, t, bind=bind), tokens, cfg.repeat)
    srs_fwd = per_call_us(lambda s: srs.forward(s, DOMAIN), senders, cfg.repeat)
    srs_rev = per_call_us(srs.reverse, forwarded, cfg.repeat)
    sign = per_call_us(signer.sign, senders, cfg.repeat)
    unsign = per_call_us(lambda s: signer.unsign(s, max_age=86400 * 60), signed, cfg.repeat)
    yield Row("codec encode", encode, "srslib SRS forward", srs_fwd, 1.0)
    yield Row("codec decode+verify", decode, "srslib SRS reverse", srs_rev, 1.0)
    yield Row("codec encode", encode, "itsdangerous TimestampSigner.sign", sign, None)
    yield Row("codec decode+verify", decode, "itsdangerous TimestampSigner.unsign", unsign, None)


def bench_mask(cfg: Config) -> Iterable[Row]:
    n = cfg.n(10_000)
    inputs = addresses(n)

    def fresh() -> Callable[[object], object]:
        tracker = make_tracker()
        return lambda a: tracker.mask(a, conversation="order-1")  # type: ignore[arg-type]

    project = once_each_us(fresh, inputs, cfg.repeat)
    floor = per_call_us(lambda a: validate_email(a, check_deliverability=False), inputs, cfg.repeat)
    yield Row("mask, new address (memory)", project, "email_validator.validate_email", floor, 1.5)
    tracker = make_tracker()
    for a in inputs:
        tracker.mask(a, conversation="order-1")
    again = per_call_us(lambda a: tracker.mask(a, conversation="order-1"), inputs, cfg.repeat)
    yield Row("mask, existing alias (memory)", again, "email_validator.validate_email", floor, None)


def bench_unmask(cfg: Config) -> Iterable[Row]:
    n = cfg.n(10_000)
    store = CountingStore()
    clock = FrozenClock(START)
    tracker = make_tracker(store, clock)
    aliases = [tracker.mask(a, conversation="order-1").address for a in addresses(n)]
    project = per_call_us(tracker.unmask, aliases, cfg.repeat)  # type: ignore[arg-type]

    key = os.urandom(32)
    table = {}
    messages = []
    for a in aliases:
        message = a.encode()
        table[message] = a
        messages.append((message, hmac.digest(key, message, "sha256")[:10]))

    def floor_fn(item: object) -> object:
        message, mac = item  # type: ignore[misc]
        if not hmac.compare_digest(hmac.digest(key, message, "sha256")[:10], mac):
            raise ValueError
        return table[message]

    floor = per_call_us(floor_fn, messages, cfg.repeat)
    yield Row("unmask (memory)", project, "HMAC-SHA256 verify + dict lookup", floor, 3.0)

    forged = [a[:5] + ("0" if a[5] != "0" else "1") + a[6:] for a in aliases]

    def reject(a: object) -> None:
        try:
            tracker.unmask(a)  # type: ignore[arg-type]
        except CtAliasError:
            return
        raise AssertionError("accepted a forged alias")

    store.lookups = 0
    forged_us = per_call_us(reject, forged, cfg.repeat)
    forged_lookups = store.lookups
    clock.advance(timedelta(days=61))
    expired_us = per_call_us(reject, aliases, cfg.repeat)
    expired_lookups = store.lookups - forged_lookups
    yield Row(
        "reject forged alias",
        forged_us,
        "HMAC-SHA256 verify + dict lookup",
        floor,
        None,
        note=f"storage lookups: {forged_lookups}",
    )
    yield Row(
        "reject expired alias",
        expired_us,
        "HMAC-SHA256 verify + dict lookup",
        floor,
        None,
        note=f"storage lookups: {expired_lookups}",
    )


BENCHMARKS: dict[str, Callable[[Config], Iterable[Row]]] = {
    "codec": bench_codec,
    "mask": bench_mask,
    "unmask": bench_unmask,
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
