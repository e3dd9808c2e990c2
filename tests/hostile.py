"""Shared pieces of the adversarial tests: trackers, a call-counting store, RFC limits."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ct_alias import (
    Clock,
    OrderEvent,
    Policy,
    Storage,
    Tracker,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "ct.example.com"
OTHER_DOMAIN = "ct.other-shop.example.net"

#: Stores of the adversarial trackers and their policies.
SIMPLE_STORE = "simple-shop"
SHORT_STORE = "short"
OTHER_STORE = "other-domain"
POLICIES: dict[str, Policy] = {
    SIMPLE_STORE: Policy(
        domain=DOMAIN, strategy="simple", end_on={OrderEvent.DELIVERED}, grace=timedelta(0)
    ),
    SHORT_STORE: Policy(
        domain=DOMAIN,
        ttl=timedelta(days=7),
        end_on={OrderEvent.CANCELED, "order-closed"},
        grace=timedelta(hours=1),
    ),
    OTHER_STORE: Policy(domain=OTHER_DOMAIN, strategy="simple"),
}
DEFAULT_POLICY = Policy(
    domain=DOMAIN, end_on={OrderEvent.INVOICED, OrderEvent.CANCELED}, grace=timedelta(days=2)
)

#: RFC 5321 limits, in octets.
MAX_LOCAL = 64
MAX_LABEL = 63
MAX_DOMAIN = 253
MAX_ADDRESS = 254

COMPLEX_ALIAS = re.compile(r"1[0-9a-v]{39}@(?P<domain>[a-z0-9.-]+)")
SIMPLE_TAG = re.compile(r"2[0-9a-v]{23}")


def make_tracker(
    store: Storage,
    clock: Clock,
    keys: Sequence[str] = ("0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I",),
    *,
    policies: dict[str, Policy] | None = None,
    **kwargs: Any,
) -> Tracker:
    """A tracker with the adversarial tests' default policy and per-store policies."""
    tracker = Tracker(
        storage=store,
        keys=list(keys),
        default_policy=DEFAULT_POLICY,
        clock=clock,
        index_key="hostile-index-key",
        **kwargs,
    )
    for name, policy in (POLICIES if policies is None else policies).items():
        tracker.set_policy(name, policy)
    return tracker


def rfc5321_problems(address: str) -> list[str]:
    """What breaks an RFC 5321 length limit (or our alphabet) in an alias address."""
    problems = []
    if not address.isascii():
        problems.append("not ASCII")
    if address != address.lower():
        problems.append("not lower case")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        problems.append("not local@domain")
    if len(local) > MAX_LOCAL:
        problems.append(f"local part of {len(local)} octets")
    if len(domain) > MAX_DOMAIN:
        problems.append(f"domain of {len(domain)} octets")
    if len(address) > MAX_ADDRESS:
        problems.append(f"address of {len(address)} octets")
    problems.extend(
        f"label {label!r} of {len(label)} octets"
        for label in domain.split(".")
        if not 0 < len(label) <= MAX_LABEL
    )
    return problems


def single_character_variants(text: str, alphabet: Iterable[str]) -> set[str]:
    """Every text one substitution, deletion or insertion away from ``text``."""
    chars = sorted(set(alphabet))
    out: set[str] = set()
    for i in range(len(text) + 1):
        out.update(text[:i] + c + text[i:] for c in chars)  # insertion
        if i < len(text):
            out.add(text[:i] + text[i + 1 :])  # deletion
            out.update(text[:i] + c + text[i + 1 :] for c in chars)  # substitution
    out.discard(text)
    return out
