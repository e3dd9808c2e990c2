"""What the relay decides: an :class:`Outcome` per recipient, a :class:`RelayResult` a message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from attrs import field, frozen

from .auth import Authentication
from .errors import InvalidArgument
from .timeline import Direction

__all__ = [
    "STATUS",
    "Outcome",
    "Refused",
    "RelayResult",
    "accepted_parts",
    "reject",
    "strip_brackets",
    "temporary_failure",
]

#: An RFC 3463 enhanced status code.
STATUS: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@frozen
class Outcome:
    """The decision for one recipient.

    Attributes:
        recipient: the envelope recipient, as given.
        code: the SMTP reply code (250 accepted; 4xx retry later; 5xx refused).
        status: the RFC 3463 enhanced status code, e.g. ``"5.1.1"``.
        reason: a human-readable reason (safe to send back: no real address).
        deliver_to: for an accepted recipient, the real address to deliver to.
        mail_from: for an accepted recipient, the envelope sender to use
            (the sender's alias; empty for a bounce).
        message: for an accepted recipient, the message bytes to deliver.
        conversation: the conversation of the recipient alias, when known.
        direction: for an accepted recipient, how :meth:`Relay.delivered`
            records the message on the timeline.
        original: for an accepted recipient, the message as received (what
            :meth:`Relay.delivered` records; the same bytes object, not a copy).
        authentication: for an accepted recipient, the verdict on the
            message's author (recorded with it).
        details: for an accepted recipient, what the rewrite left out
            (counts, never addresses), recorded with the message.
        report: the message was a delivery report, consumed and recorded; an
            accepted report outcome delivers nothing, or only the relay's
            notice to the outside sender whose message bounced.
        store: the store of the recipient alias's conversation, when known.
    """

    recipient: str
    code: int
    status: str
    reason: str
    deliver_to: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    message: bytes | None = field(default=None, repr=False)
    conversation: str | None = None
    direction: Direction | None = None
    original: bytes | None = field(default=None, repr=False, eq=False)
    authentication: Authentication | None = field(default=None, repr=False, eq=False)
    details: Mapping[str, object] | None = field(default=None, repr=False, eq=False)
    report: bool = False
    store: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the message is to be delivered to this recipient."""
        return 200 <= self.code < 300

    @property
    def reply(self) -> str:
        """The SMTP reply line, e.g. ``"550 5.1.1 unknown alias"``."""
        return f"{self.code} {self.status} {self.reason}"


@frozen
class RelayResult:
    """The outcomes of one message, one per recipient, in envelope order."""

    outcomes: tuple[Outcome, ...]

    @property
    def accepted(self) -> tuple[Outcome, ...]:
        """The outcomes to deliver."""
        return tuple(o for o in self.outcomes if o.accepted)

    @property
    def rejected(self) -> tuple[Outcome, ...]:
        """The outcomes refused (permanently or for now)."""
        return tuple(o for o in self.outcomes if not o.accepted)


def reject(
    recipient: str,
    code: int,
    status: str,
    reason: str,
    conversation: str | None = None,
    *,
    store: str | None = None,
) -> Outcome:
    return Outcome(recipient, code, status, reason, conversation=conversation, store=store)


def temporary_failure(
    recipient: str, conversation: str | None = None, *, store: str | None = None
) -> Outcome:
    """``451 4.3.0``: something on our side failed; the sender's server tries again later.

    The reply says nothing of what failed (the log says which part, by type).
    """
    return reject(
        recipient, 451, "4.3.0", "temporary failure, try again later", conversation, store=store
    )


class Refused(Exception):
    """Internal: a recipient is refused with this outcome (carried as ``args[0]``)."""


def accepted_parts(outcome: Outcome) -> tuple[str, str, Direction, bytes]:
    if (
        not isinstance(outcome, Outcome)
        or not outcome.accepted
        or outcome.conversation is None
        or outcome.store is None
        or outcome.direction is None
        or outcome.original is None
    ):
        raise InvalidArgument("outcome", "must be an accepted outcome of Relay.handle")
    return outcome.conversation, outcome.store, outcome.direction, outcome.original


def strip_brackets(address: str) -> str:
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    return address
