"""The ``ct-alias policy`` commands: a store's policy, kept in the database."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TextIO

import attrs

from . import _arguments as check
from ._cli_config import DEFAULT_DB, BadValue, UsageError, env_value, open_storage
from .errors import ConfigurationError
from .policy import Policy
from .storage.base import PolicyStorage
from .strategies import strategy_factory

__all__ = ["cmd_policy_set", "cmd_policy_show"]


def _policy_storage(args: argparse.Namespace) -> PolicyStorage:
    storage = open_storage(args.db or env_value("CT_ALIAS_DB", DEFAULT_DB) or DEFAULT_DB)
    if not isinstance(storage, PolicyStorage):
        raise UsageError(
            f"the storage {type(storage).__name__} does not keep policies (no save_policy() "
            "and policies()): set them with Tracker.set_policy in each process instead"
        )
    return storage


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The policy fields the flags change."""
    changes: dict[str, Any] = {}
    if args.mask is not None:
        changes["strategy"] = args.mask
    if args.domain is not None:
        changes["domain"] = args.domain
    if args.ttl_days is not None:
        changes["ttl"] = timedelta(days=args.ttl_days)
    if args.grace_days is not None:
        changes["grace"] = timedelta(days=args.grace_days)
    if args.end_on is not None:
        changes["end_on"] = frozenset(e for e in args.end_on.split(",") if e)
    if args.max_contacts is not None:
        changes["max_contacts"] = args.max_contacts
    return changes


def _new_policy(store: str, stored: Mapping[str, Any] | None, changes: dict[str, Any]) -> Policy:
    if stored is None:
        domain = changes.pop("domain", None) or env_value("CT_ALIAS_DOMAIN")
        if not domain:
            raise UsageError(
                f"store {store!r} has no stored policy yet: give its alias domain with "
                "--domain (or CT_ALIAS_DOMAIN)"
            )
        changes["domain"] = domain
    try:
        if stored is None:
            policy = Policy(**changes)
        else:
            policy = attrs.evolve(Policy.from_data(stored), **changes)
        strategy_factory(policy.strategy)
    except ConfigurationError as exc:
        raise BadValue(str(exc)) from exc
    return policy


def cmd_policy_set(args: argparse.Namespace, out: TextIO) -> int:
    """Store a store's policy: the stored one (or a new one) with the flags' changes."""
    store = check.store(args.store)
    storage = _policy_storage(args)
    policy = _new_policy(store, storage.policies().get(store), _changes(args))
    storage.save_policy(store, policy.to_data())
    print(
        f"store {store!r}: {policy.strategy} aliases under {policy.domain}, "
        f"valid {policy.ttl.days} days (trackers use it within their policy refresh, "
        "10 seconds by default)",
        file=out,
    )
    return 0


def cmd_policy_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print the stored policies (of one store, or all) as JSON."""
    storage = _policy_storage(args)
    policies = storage.policies()
    if args.store is not None:
        store = check.store(args.store)
        if store not in policies:
            print(f"store {store!r} has no stored policy: the default policy applies", file=out)
            return 0
        policies = {store: policies[store]}
    print(json.dumps(dict(sorted(policies.items())), indent=2, ensure_ascii=False), file=out)
    return 0
