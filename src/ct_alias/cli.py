"""The ``ct-alias`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from . import __version__
from .aliases import Role
from .clock import FrozenClock
from .errors import CtAliasError
from .policy import Policy
from .storage.memory import MemoryStore
from .tracker import Tracker

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    del args
    clock = FrozenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    tracker = Tracker(
        store=MemoryStore(),
        keys=["demo-key-not-for-production"],
        default_policy=Policy(domain="ct.example.com"),
        clock=clock,
    )
    tracker.set_policy("loja-b", Policy(domain="ct.example.com", strategy="simple"))
    for store in ("loja-a", "loja-b"):
        policy = tracker.policy_for(store)
        print(f"\n== {store}: {policy.strategy} aliases ==")
        customer = tracker.mask(
            "Maria.Silva@Example.com.br", conversation=f"{store}-1077540530277-01", store=store
        )
        shop = tracker.mask(
            "vendas@loja.example.com",
            conversation=customer.conversation,
            store=store,
            role=Role.STORE,
        )
        print(f"customer alias  {customer.address}")
        print(f"store alias     {shop.address}")
        print(f"unmask          {tracker.unmask(customer.address.upper()).real_address}")
    clock.advance(timedelta(days=61))
    print("\n== 61 days later ==")
    try:
        tracker.unmask(customer.address)
    except CtAliasError as exc:
        print(f"refused: {exc}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ct-alias", description="Order-scoped e-mail masking.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="play a whole order on throw-away storage")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except CtAliasError as exc:
        print(f"ct-alias: {exc}", file=sys.stderr)
        return 1
    return status
