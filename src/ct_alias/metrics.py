"""Response metrics from the timeline: how long customers wait for the store.

What counts (the same rules for one conversation and for a store):

- A **customer message** is an *inbound* message entry whose author was
  recorded as the conversation's customer (or follow-up) participant: the
  relay's authenticator vouched for it, or the host recorded it. A message
  whose author is unverified, an outside contact (a carrier) or the store
  itself does not count.
- A **store reply** is an *outbound* message entry whose author was recorded
  as the store participant.
- **Automatic messages never count**: order-step notifications
  (:meth:`~ct_alias.Tracker.notify` marks them ``Auto-Submitted:
  auto-generated``), auto-replies and bulk mail (``Auto-Submitted`` other
  than ``no``, ``Precedence: bulk``/``junk``/``list``/``auto_reply``,
  ``X-Autoreply``), and delivery reports (bounces), which the relay records
  as events, never as messages.
- Times are those of the timeline (when the relay handed the message on, or
  the host recorded it), never a message's own ``Date`` field, which its
  sender writes.
- A customer's **turn** starts at the first customer message after the last
  store reply (or at the first one of all) and ends at the next store reply:
  its **reply time** is the time between. Several customer messages before a
  reply are one turn, counted from the first; a store message with no turn
  open (the store writing first, or again) is not a reply.
- A **calendar** is the host's business hours: any callable ``(start, end)
  -> timedelta`` that says how much of that span counts (the default is all
  of it, ``end - start``).

:meth:`Timeline.metrics <ct_alias.Timeline.metrics>` applies these rules to
one conversation, :meth:`Tracker.response_times
<ct_alias.Tracker.response_times>` to a store's conversations over a period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from attrs import frozen

from .errors import InvalidArgument
from .timeline import Direction, EntryKind, TimelineEntry, iso_utc

__all__ = [
    "Calendar",
    "ConversationMetrics",
    "ResponseTimes",
    "conversation_metrics",
    "elapsed",
    "is_customer_message",
    "is_store_reply",
]

Calendar = Callable[[datetime, datetime], timedelta]
"""How much of a span counts: ``(start, end) -> timedelta`` (business hours, say)."""

_CUSTOMER_ROLES: Final = frozenset({"customer", "follow_up"})


def elapsed(start: datetime, end: datetime) -> timedelta:
    """The default calendar: every second counts."""
    return end - start


def _author_role(entry: TimelineEntry) -> object:
    authors = entry.data.get("from")
    if not isinstance(authors, list) or not authors or not isinstance(authors[0], Mapping):
        return None
    first: Mapping[str, Any] = authors[0]
    return None if first.get("unverified") else first.get("role")


def _automatic(entry: TimelineEntry) -> bool:
    return bool(entry.data.get("automatic")) or bool(entry.data.get("isReport"))


def is_customer_message(entry: TimelineEntry) -> bool:
    """Whether an entry is a customer message (see the rules above)."""
    return (
        entry.kind is EntryKind.MESSAGE
        and entry.name == Direction.INBOUND.value
        and not _automatic(entry)
        and _author_role(entry) in _CUSTOMER_ROLES
    )


def is_store_reply(entry: TimelineEntry) -> bool:
    """Whether an entry is a store message that can reply (see the rules above)."""
    return (
        entry.kind is EntryKind.MESSAGE
        and entry.name == Direction.OUTBOUND.value
        and not _automatic(entry)
        and _author_role(entry) == "store"
    )


def _span(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    counted = calendar(start, end)
    if not isinstance(counted, timedelta):
        raise InvalidArgument("calendar", f"returned {type(counted).__name__}, not a timedelta")
    return max(counted, timedelta(0))


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


@frozen
class ConversationMetrics:
    """One conversation's response metrics (see the rules in :mod:`ct_alias.metrics`).

    Attributes:
        customer_messages: how many customer messages there are.
        store_replies: how many store messages answered a customer's turn.
        first_customer_message_at: when the customer first wrote.
        first_reply_at: when the store first answered.
        time_to_first_reply: the reply time of the customer's first turn (by
            the calendar), or None when it is not answered (yet).
        awaiting_reply: whether a customer's turn is open.
        awaiting_since: when that turn started (its first message), or None.
        reply_times: the reply time of each answered turn, in order.
    """

    customer_messages: int
    store_replies: int
    first_customer_message_at: datetime | None
    first_reply_at: datetime | None
    time_to_first_reply: timedelta | None
    awaiting_reply: bool
    awaiting_since: datetime | None
    reply_times: tuple[timedelta, ...]

    def to_dict(self) -> dict[str, Any]:
        """As JSON-compatible data (durations in seconds, times ISO 8601 UTC)."""
        return {
            "customerMessages": self.customer_messages,
            "storeReplies": self.store_replies,
            "firstCustomerMessageAt": iso_utc(self.first_customer_message_at),
            "firstReplyAt": iso_utc(self.first_reply_at),
            "timeToFirstReply": _seconds(self.time_to_first_reply),
            "awaitingReply": self.awaiting_reply,
            "awaitingSince": iso_utc(self.awaiting_since),
            "replyTimes": [t.total_seconds() for t in self.reply_times],
        }


class _Turns:
    """The turn state of one conversation, fed its entries in order."""

    __slots__ = (
        "calendar",
        "customer",
        "first_customer",
        "first_reply",
        "replies",
        "times",
        "waiting",
    )

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.waiting: datetime | None = None
        self.customer = 0
        self.replies = 0
        self.first_customer: datetime | None = None
        self.first_reply: datetime | None = None
        self.times: list[timedelta] = []

    def feed(self, entry: TimelineEntry) -> timedelta | None:
        """Take one entry; the reply time it closes, if it is a reply."""
        if is_customer_message(entry):
            self.customer += 1
            if self.first_customer is None:
                self.first_customer = entry.at
            if self.waiting is None:
                self.waiting = entry.at
        elif self.waiting is not None and is_store_reply(entry):
            took = _span(self.calendar, self.waiting, entry.at)
            self.waiting = None
            self.replies += 1
            if self.first_reply is None:
                self.first_reply = entry.at
            self.times.append(took)
            return took
        return None


def conversation_metrics(
    entries: Iterable[TimelineEntry], *, calendar: Calendar | None = None
) -> ConversationMetrics:
    """The metrics of one conversation's entries, in timeline order.

    Raises:
        InvalidArgument: ``calendar`` is not callable, or returned something
            that is not a timedelta.
    """
    turns = _Turns(_calendar(calendar))
    for entry in entries:
        turns.feed(entry)
    return ConversationMetrics(
        customer_messages=turns.customer,
        store_replies=turns.replies,
        first_customer_message_at=turns.first_customer,
        first_reply_at=turns.first_reply,
        time_to_first_reply=turns.times[0] if turns.times else None,
        awaiting_reply=turns.waiting is not None,
        awaiting_since=turns.waiting,
        reply_times=tuple(turns.times),
    )


def _calendar(calendar: Calendar | None) -> Calendar:
    if calendar is None:
        return elapsed
    if not callable(calendar):
        raise InvalidArgument("calendar", "must be a callable (start, end) -> timedelta")
    return calendar


@frozen
class ResponseTimes:
    """A store's reply times over a period (see :meth:`ct_alias.Tracker.response_times`).

    Attributes:
        store: the store.
        since: the start of the period.
        until: its end (turns that started from ``since`` to ``until``, both included, count).
        median: the median reply time of the answered turns, or None.
        replies: how many turns were answered.
        awaiting: how many turns are still open.
        conversations: how many conversations had a turn that counts.
    """

    store: str
    since: datetime
    until: datetime
    median: timedelta | None
    replies: int
    awaiting: int
    conversations: int

    def to_dict(self) -> dict[str, Any]:
        """As JSON-compatible data (the median in seconds)."""
        return {
            "store": self.store,
            "since": iso_utc(self.since),
            "until": iso_utc(self.until),
            "median": _seconds(self.median),
            "replies": self.replies,
            "awaiting": self.awaiting,
            "conversations": self.conversations,
        }


def _median(times: list[timedelta]) -> timedelta | None:
    """The median; of an even count, the mean of the middle two."""
    if not times:
        return None
    ordered = sorted(times)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def response_times(
    entries: Iterable[TimelineEntry],
    *,
    store: str,
    since: datetime,
    until: datetime,
    calendar: Calendar | None,
) -> ResponseTimes:
    """The store's reply times over message entries of many conversations.

    ``entries`` are the store's messages recorded from ``since``, each
    conversation's in timeline order. Turns that start before ``until``
    count; their replies may come later. Only what was recorded from
    ``since`` is read: a turn that began before ``since`` counts from its
    first customer message at or after ``since``. Memory grows with the
    conversations that have a turn open, not with the messages.
    """
    open_turns: dict[str, _Turns] = {}  # only conversations with a turn open
    times: list[timedelta] = []
    counted: set[str] = set()
    chosen = _calendar(calendar)
    for entry in entries:
        state = open_turns.get(entry.conversation)
        if state is None:
            if entry.at > until or not is_customer_message(entry):
                continue  # only a customer message within the period opens a turn
            state = open_turns[entry.conversation] = _Turns(chosen)
            counted.add(entry.conversation)
        took = state.feed(entry)
        if took is not None:
            times.append(took)
            del open_turns[entry.conversation]
    return ResponseTimes(
        store=store,
        since=since,
        until=until,
        median=_median(times),
        replies=len(times),
        awaiting=len(open_turns),
        conversations=len(counted),
    )
