"""The ``ct-alias`` command line's configuration: flags, variables, and the tracker they make."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .errors import ConfigurationError, PublicIndexKeyWarning
from .policy import Policy
from .storage.base import Storage
from .strategies import strategy_factory
from .tracker import Tracker

__all__ = [
    "DEFAULT_DB",
    "FLAGS",
    "BadValue",
    "UsageError",
    "domain_from_args",
    "env_value",
    "host_port",
    "key_list",
    "keys_from_args",
    "non_empty",
    "not_negative",
    "open_storage",
    "policy_from_args",
    "positive",
    "redact",
    "tracker_from_args",
    "whole",
]

DEFAULT_DB = "sqlite:///ct_alias.db"


class UsageError(ConfigurationError):
    """A setting the command needs is missing (exit status 1)."""


class BadValue(UsageError):
    """A flag or variable has a value the command cannot use (exit status 2)."""


def env_value(name: str, default: str | None = None) -> str | None:
    """A variable's value; an empty variable counts as unset."""
    return os.environ.get(name) or default


def key_list(flag: str | None, flag_name: str, variable: str) -> list[str]:
    """Keys from a flag or the environment: comma-separated, oldest first, none empty."""
    raw = flag if flag is not None else env_value(variable)
    if raw is None:
        return []
    keys = [k.strip() for k in raw.split(",")]
    if not all(keys):
        source = flag_name if flag is not None else variable
        raise BadValue(f"{source} has an empty key: give keys separated by single commas")
    return keys


def non_empty(value: str) -> str:
    """An argparse type: any text but the empty one."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def positive(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = whole(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def not_negative(value: str) -> int:
    """An argparse type: a whole number of at least 0."""
    number = whole(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {number}")
    return number


def whole(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


#: The library's argument names, as the command line spells them.
FLAGS = {
    "conversation": "--conversation",
    "store": "--store",
    "role": "--role",
    "reason": "--reason",
    "limit": "--limit",
    "after": "--after",
    "older_than": "--older-than-days",
    "batch_size": "--batch-size",
}


def keys_from_args(args: argparse.Namespace) -> list[str]:
    keys = key_list(args.keys, "--keys", "CT_ALIAS_KEYS")
    if not keys:
        raise UsageError(
            "no signing keys: set CT_ALIAS_KEYS (comma-separated, oldest first) or pass --keys; "
            "make one with `ct-alias keys generate`"
        )
    return keys


def domain_from_args(args: argparse.Namespace) -> str:
    domain = args.domain or env_value("CT_ALIAS_DOMAIN")
    if not domain:
        raise UsageError("no alias domain: set CT_ALIAS_DOMAIN or pass --domain")
    return domain


def open_storage(url: str, *, upgrade: bool = False) -> Storage:
    from .storage.registry import storage_from_url  # noqa: PLC0415 - keeps startup light

    storage = storage_from_url(url)
    if upgrade:
        storage.upgrade()
    return storage


def policy_from_args(args: argparse.Namespace) -> Policy:
    domain = domain_from_args(args)
    try:
        Policy(domain=domain)
    except ConfigurationError as exc:
        raise BadValue(f"--domain (CT_ALIAS_DOMAIN): {exc}") from exc
    strategy = args.strategy or env_value("CT_ALIAS_STRATEGY") or "complex"
    try:
        strategy_factory(strategy)
        return Policy(domain=domain, strategy=strategy)
    except ConfigurationError as exc:
        raise BadValue(f"--strategy (CT_ALIAS_STRATEGY): {exc}") from exc


def tracker_from_args(args: argparse.Namespace) -> Tracker:
    keys = keys_from_args(args)
    policy = policy_from_args(args)
    address_keys = key_list(args.address_keys, "--address-keys", "CT_ALIAS_ADDRESS_KEYS")
    index_key = args.index_key or env_value("CT_ALIAS_INDEX_KEY")
    if address_keys and index_key is None:
        raise UsageError(
            "--address-keys (CT_ALIAS_ADDRESS_KEYS) need --index-key (CT_ALIAS_INDEX_KEY) too: "
            "with the public default, someone holding the database could confirm a guessed "
            "address through its blind index"
        )
    if index_key is None:
        print(
            "ct-alias: warning: no index key (set CT_ALIAS_INDEX_KEY or pass --index-key; make "
            "one with `ct-alias keys generate` and never change it): the public default lets "
            "someone holding the database confirm a guessed address",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PublicIndexKeyWarning)  # said above, in CLI words
        return Tracker(
            storage=open_storage(args.db or env_value("CT_ALIAS_DB", DEFAULT_DB) or DEFAULT_DB),
            keys=keys,
            default_policy=policy,
            index_key=index_key,
            address_keys=address_keys or None,
        )


def host_port(text: str, flag: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{flag} must be HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def redact(url: str) -> str:
    """The URL with its password (if it has one) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    if sep and "@" in authority:
        credentials, _, host = rest.partition("@")
        user, colon, _ = credentials.partition(":")
        return f"{scheme}://{user}:***@{host}" if colon else url
    return url
