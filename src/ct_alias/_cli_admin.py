"""The ``ct-alias`` administration commands: ``purge``, ``forget``, ``db upgrade``, ``keys``."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import timedelta
from typing import Any, TextIO

from ._cli_config import (
    DEFAULT_DB,
    UsageError,
    env_value,
    key_list,
    open_storage,
    redact,
    tracker_from_args,
)
from .storage.base import Storage
from .tracker import Rotation, Tracker

__all__ = ["cmd_db_upgrade", "cmd_forget", "cmd_keys_generate", "cmd_keys_rotate", "cmd_purge"]


def cmd_purge(args: argparse.Namespace, out: TextIO) -> int:
    tracker = tracker_from_args(args)
    older_than = timedelta(days=args.older_than_days)
    if _interactive(out):
        due = _purgeable(tracker, older_than, _Progress(out, "checking"))
        print(
            f"purging {due} alias(es) that stopped working {args.older_than_days}+ days ago…",
            file=out,
            flush=True,
        )
    count = tracker.purge(older_than=older_than)
    print(f"purged {count} alias(es)", file=out)
    return 0


def cmd_forget(args: argparse.Namespace, out: TextIO) -> int:
    """Forget a person; print the receipt. Status 1 when aliases could not be read."""
    receipt = tracker_from_args(args).forget(args.address)
    if args.json:
        print(json.dumps(receipt.to_dict(), indent=2), file=out)
    else:
        print(
            f"forgotten: {receipt.aliases} alias(es) in {receipt.stores} store(s) and "
            f"{receipt.conversations} conversation(s); {receipt.entries} timeline "
            "entr(y/ies) redacted",
            file=out,
        )
    if receipt.unreadable:
        print(
            f"warning: {receipt.unreadable} stored alias(es) without an owner could not be read "
            "(a missing address key, or altered records) and may belong to this address: "
            "add the missing keys to --address-keys (CT_ALIAS_ADDRESS_KEYS) and run it again",
            file=sys.stderr,
        )
        return 1
    return 0


def _purgeable(tracker: Tracker, older_than: timedelta, progress: _Progress) -> int:
    """How many stored aliases a purge would remove now, counting with a progress line."""
    from .storage.base import stopped_working  # noqa: PLC0415

    cutoff = tracker.clock.now() - older_than
    records = _all_records(tracker.storage)
    total = len(records)
    due = 0
    for done, alias in enumerate(records, 1):
        if stopped_working(alias)[0] <= cutoff:
            due += 1
        if done % 500 == 0 or done == total:
            progress.show(done, total, f"{due} to purge")
    progress.finish()
    return due


def _all_records(storage: Storage) -> list[Any]:
    records: list[Any] = []
    after = None
    while batch := storage.scan(after=after, limit=1000):
        records += batch
        after = batch[-1].key
    return records


def cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    url = args.db or env_value("CT_ALIAS_DB", DEFAULT_DB) or DEFAULT_DB
    open_storage(url, upgrade=True)
    print(f"database schema is up to date: {redact(url)}", file=out)
    return 0


def cmd_keys_generate(args: argparse.Namespace, out: TextIO) -> int:
    for _ in range(args.count):
        print(secrets.token_urlsafe(32), file=out)
    return 0


def cmd_keys_rotate(args: argparse.Namespace, out: TextIO) -> int:
    tracker = tracker_from_args(args)
    if not key_list(args.address_keys, "--address-keys", "CT_ALIAS_ADDRESS_KEYS"):
        raise UsageError(
            "keys rotate needs the address keys: set CT_ALIAS_ADDRESS_KEYS or pass "
            "--address-keys (comma-separated, oldest first; the newest seals)"
        )
    report = None
    if _interactive(out):
        records = _all_records(tracker.storage)
        total = sum(1 for r in records if args.after is None or r.key > args.after)
        line = _Progress(out, "re-sealing")

        def report(progress: Rotation) -> None:
            line.show(
                progress.scanned,
                total,
                f"{progress.resealed} re-sealed (resume with --after {progress.last_key})",
            )

    result = tracker.rotate_address_keys(
        batch_size=args.batch_size, after=args.after, progress=report
    )
    if report is not None:
        line.finish()
    if result.corrupt:
        print(
            f"done: scanned {result.scanned}, re-sealed {result.resealed}; "
            f"{len(result.corrupt)} record(s) do not open and were left as they are "
            f"(altered, moved, or plaintext): {', '.join(result.corrupt[:10])}; "
            "keep the older address keys until they are looked at",
            file=out,
        )
        return 1
    print(
        f"done: scanned {result.scanned}, re-sealed {result.resealed}; "
        "the older address keys can now be removed",
        file=out,
    )
    return 0


def _interactive(out: TextIO) -> bool:
    """Whether progress lines are wanted: the output is a terminal."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


class _Progress:
    """One line redrawn in place: ``label: done/total (percent), note``."""

    def __init__(self, out: TextIO, label: str) -> None:
        self._out = out
        self._label = label
        self._width = 0

    def show(self, done: int, total: int, note: str) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        text = f"{self._label}: {done}/{total} ({percent}%), {note}"
        self._out.write("\r" + text.ljust(self._width))
        self._out.flush()
        self._width = len(text)

    def finish(self) -> None:
        if self._width:
            self._out.write("\n")
            self._out.flush()
