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
from .policy import Policy, Window
from .storage.base import PolicyStorage
from .strategies import strategy_factory

__all__ = ["add_rule_flags", "cmd_policy_set", "cmd_policy_show"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_NONE = "none"


def _window(text: str) -> Window | None:
    """``EVENT:30d`` (units d, h, m, s) as a :class:`Window`; ``none`` for no window."""
    if text == _NONE:
        return None
    event, _, span = text.rpartition(":")
    number, unit = span[:-1], span[-1:]
    if not event or unit not in _UNITS or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(
            "expected EVENT:DURATION such as delivered:30d (units d, h, m, s) "
            f"or none, not {text!r}"
        )
    try:
        return Window(event, timedelta(seconds=int(number) * _UNITS[unit]))
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _per_hour(text: str) -> int | None:
    if text == _NONE:
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or none, not {text!r}")
    return int(text)


def _optional(text: str) -> str | None:
    return None if text == _NONE else text


def _on_off(text: str) -> bool:
    if text not in {"on", "off"}:
        raise argparse.ArgumentTypeError(f"expected on or off, not {text!r}")
    return text == "on"


#: The conversation rules' flags of ``policy set``: (flag, policy field, type, help).
_RULE_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    (
        "--conversation-rules",
        "conversation_rules",
        _on_off,
        "on: the relay enforces conversation states and blocked senders (default off)",
    ),
    (
        "--support-address",
        "support_address",
        _optional,
        "the store's support address: the only one relayed to and from while on hold (or none)",
    ),
    (
        "--to-customer-window",
        "to_customer_window",
        _window,
        (
            "EVENT:DURATION, e.g. delivered:30d: new messages to the customer only until then "
            "(replies stay allowed), or none"
        ),
    ),
    (
        "--from-customer-window",
        "from_customer_window",
        _window,
        "EVENT:DURATION: the same for the customer's messages, or none (default: always)",
    ),
    (
        "--to-customer-per-hour",
        "to_customer_per_hour",
        _per_hour,
        "at most this many messages to the customer per conversation and hour, or none",
    ),
    (
        "--from-customer-per-hour",
        "from_customer_per_hour",
        _per_hour,
        "at most this many messages from the customer per conversation and hour, or none",
    ),
    (
        "--unsubscribe-url",
        "unsubscribe_url",
        _optional,
        "https URL template with {token}: one-click opt-out at the host's endpoint, or none",
    ),
)


def add_rule_flags(parser: argparse.ArgumentParser) -> None:
    """The conversation rules' flags of ``policy set`` (each unchanged when not given)."""
    for flag, name, kind, text in _RULE_FLAGS:
        metavar = {_on_off: "on|off", _window: "EVENT:DURATION", _per_hour: "N"}.get(kind, "TEXT")
        parser.add_argument(
            flag, dest=name, type=kind, default=_UNCHANGED, metavar=metavar, help=text
        )


_UNCHANGED: Any = object()


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
    for _, name, _, _ in _RULE_FLAGS:
        value = getattr(args, name, _UNCHANGED)
        if value is not _UNCHANGED:
            changes[name] = value
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
