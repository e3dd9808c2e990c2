"""Conversation rules: state, blocked senders, opt-out, windows and rate caps, from the timeline.

Everything a rule needs is on the conversation's timeline: the host's
``state-changed``, ``sender-blocked``/``sender-unblocked`` and ``opted-out``
events, the order events windows count from, and the messages (their
direction, time and ids). :class:`RuleFold` folds those entries into the
little a decision needs, one entry at a time, so a tracker keeps a fold per
conversation and reads only the entries recorded since (see
:meth:`ct_alias.Tracker.conversation_rules`); :func:`decide` is the pure
decision the relay asks for before it relays a message.

The refusals, their SMTP answers and reasons:

- ``closed``: ``550 5.7.1``, nothing is relayed;
- ``on_hold``: ``550 5.7.1``, except mail to or from the store's support address;
- ``blocked``: ``550 5.7.1``, the sender was blocked in this conversation;
- ``window``: ``550 5.7.1``, a message that is not a reply, after the window;
- ``rate``: ``450 4.7.1``, more messages in one direction within an hour than
  the policy allows (recorded once per window).
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from attrs import field, frozen

from .aliases import Alias
from .policy import Policy, Window
from .timeline import Direction, EntryKind, TimelineEntry
from .vocabulary import ConversationState, RuleEvent

__all__ = [
    "OVERLAP",
    "RATE_WINDOW",
    "ConversationRules",
    "ConversationState",
    "Rule",
    "RuleFold",
    "RuleRefusal",
    "decide",
]

#: The window a rate cap counts messages in.
RATE_WINDOW: Final = timedelta(hours=1)
#: How far before its newest entry a fold reads again (to see entries recorded back-dated).
OVERLAP: Final = timedelta(minutes=15)
#: How many message ids per direction a fold remembers for recognising replies.
MAX_REMEMBERED_IDS: Final = 1000
_RULE_EVENTS: Final = frozenset(RuleEvent._value2member_map_)
_DIRECTIONS: Final = {d.value: d for d in Direction}


class Rule(enum.StrEnum):
    """Which rule refused a message (the ``rule`` of its ``delivery-rejected`` entry)."""

    CLOSED = "closed"
    ON_HOLD = "on_hold"
    BLOCKED = "blocked"
    WINDOW = "window"
    RATE = "rate"


@frozen
class RuleRefusal:
    """A message a rule refuses.

    Attributes:
        rule: which rule.
        code: the SMTP reply code (550, or 450 for a rate cap).
        status: the RFC 3463 enhanced status code.
        reason: a reason a person can read (it names no address).
        once: for refusals recorded once per window: the key that makes the
            timeline entry unique (``None``: recorded as every refusal is).
        sender: the refused sender's alias (``None``: not verified), set by
            the relay: each sender's refusals are recorded apart.
    """

    rule: Rule
    code: int
    status: str
    reason: str
    once: str | None = None
    sender: Alias | None = field(default=None, repr=False)


@frozen
class ConversationRules:
    """What the timeline says about a conversation's rules (see ``Tracker.conversation_rules``).

    Attributes:
        state: open, on hold or closed.
        state_reason: the reason the host gave with the state, if any.
        state_since: when the state was set (``None`` for a conversation never set).
        blocked: the blocked senders, as the ``slot`` their ``sender-blocked``
            entries name (a keyed hash of the sender's role and address).
        opted_out_at: when the customer opted out of non-critical messages, or ``None``.
    """

    state: ConversationState
    state_reason: str | None
    state_since: datetime | None
    blocked: frozenset[str]
    opted_out_at: datetime | None

    @property
    def opted_out(self) -> bool:
        """Whether the customer opted out of non-critical messages."""
        return self.opted_out_at is not None


class RuleFold:
    """The rule-relevant facts of a conversation, folded entry by entry.

    Args:
        message_key: the stand-in of a message id in this conversation (the
            tracker's :meth:`~ct_alias.blind_index.BlindIndex.message_key`), so
            replies can be recognised by the ids each side saw.

    A tracker holds :attr:`lock` while it adds to a fold or reads it.
    """

    def __init__(self, message_key: Callable[[str], str]) -> None:
        self._message_key = message_key
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget everything folded, to fold the whole timeline again (the lock is kept)."""
        self.read_at: datetime | None = None
        self.position: tuple[datetime, int] | None = None
        #: How many stored entries were folded (each once).
        self.count = 0
        # the entries folded within OVERLAP of the newest (read again, never folded twice)
        self.seen: dict[int, datetime] = {}
        self.state = ConversationState.OPEN
        self.state_reason: str | None = None
        self.state_since: datetime | None = None
        self.blocked: set[str] = set()
        self.opted_out_at: datetime | None = None
        self.events: dict[str, datetime] = {}
        self.times: dict[Direction, deque[tuple[datetime, int]]] = {d: deque() for d in Direction}
        self.ids: dict[Direction, OrderedDict[str, None]] = {d: OrderedDict() for d in Direction}

    def add(self, entries: Iterable[TimelineEntry]) -> None:
        """Fold stored entries (in timeline order) in."""
        for entry in entries:
            if entry.seq is not None:
                if entry.seq in self.seen:
                    continue
                self.seen[entry.seq] = entry.at
                self.count += 1
                if self.position is None or (entry.at, entry.seq) > self.position:
                    self.position = (entry.at, entry.seq)
            if entry.kind is EntryKind.MESSAGE:
                self._message(entry)
            elif entry.name in _RULE_EVENTS:
                self._rule_event(entry)
            else:
                latest = self.events.get(entry.name)
                if latest is None or entry.at > latest:
                    self.events[entry.name] = entry.at

    def read_from(self) -> tuple[datetime, int] | None:
        """Where to read on: :data:`OVERLAP` before the newest entry folded.

        An entry recorded with an earlier time than the newest one (an order
        event the host back-dates a little) is folded too; entries within the
        overlap are read again but folded once. It also forgets what is older
        than the overlap.
        """
        if self.position is None:
            return None
        start = self.position[0] - OVERLAP
        self.seen = {seq: at for seq, at in self.seen.items() if at >= start}
        return (start, -1)

    def _rule_event(self, entry: TimelineEntry) -> None:
        data = entry.data
        if entry.name == RuleEvent.STATE_CHANGED:
            value = data.get("state")
            if isinstance(value, str) and value in ConversationState._value2member_map_:
                self.state = ConversationState(value)
                reason = data.get("reason")
                self.state_reason = reason if isinstance(reason, str) else None
                self.state_since = entry.at
        elif entry.name in {RuleEvent.SENDER_BLOCKED, RuleEvent.SENDER_UNBLOCKED}:
            slot = data.get("slot")
            if isinstance(slot, str):
                if entry.name == RuleEvent.SENDER_BLOCKED:
                    self.blocked.add(slot)
                else:
                    self.blocked.discard(slot)
        elif entry.name == RuleEvent.OPTED_OUT and self.opted_out_at is None:
            self.opted_out_at = entry.at

    def _message(self, entry: TimelineEntry) -> None:
        direction = _DIRECTIONS.get(entry.name)
        if direction is None:
            return
        times = self.times[direction]
        times.append((entry.at, entry.seq or 0))
        while times[0][0] <= entry.at - RATE_WINDOW:
            times.popleft()
        message_id = entry.data.get("messageId")
        if isinstance(message_id, str) and message_id:
            ids = self.ids[direction]
            ids[message_id.lower()] = None
            ids[self._message_key(message_id)] = None
            while len(ids) > 2 * MAX_REMEMBERED_IDS:
                ids.popitem(last=False)

    def recent(self, direction: Direction, now: datetime, most: int) -> list[tuple[datetime, int]]:
        """The ``(at, seq)`` of ``direction``'s newest messages within :data:`RATE_WINDOW`.

        At most ``most`` of them, newest first (a cap reads no more than itself).
        """
        since = now - RATE_WINDOW
        found: list[tuple[datetime, int]] = []
        for item in reversed(self.times[direction]):
            if item[0] <= since or len(found) >= most:
                break
            found.append(item)
        return found

    def names(self, direction: Direction, ids: Iterable[str]) -> bool:
        """Whether any of ``ids`` (as seen on the wire) names a message sent in ``direction``."""
        known = self.ids[direction]
        for ident in ids:
            lowered = ident.lower()
            if lowered in known or lowered.partition("@")[0] in known:
                return True
        return False

    def snapshot(self) -> ConversationRules:
        """The public view of the fold."""
        return ConversationRules(
            state=self.state,
            state_reason=self.state_reason,
            state_since=self.state_since,
            blocked=frozenset(self.blocked),
            opted_out_at=self.opted_out_at,
        )


def decide(
    fold: RuleFold,
    policy: Policy,
    *,
    to_customer: bool,
    sender_slot: str | None,
    support_involved: bool,
    replied_ids: Iterable[str],
    now: datetime,
) -> RuleRefusal | None:
    """Whether the rules refuse a message; ``None`` when it may go.

    Args:
        fold: the conversation's rule facts (read up to now).
        policy: the store's policy.
        to_customer: the message goes to the customer (or a follow-up);
            otherwise it comes from the customer's side.
        sender_slot: the authenticated sender's slot (``None``: unverified,
            or nothing is blocked).
        support_involved: the recipient or the authenticated sender is the
            policy's support address.
        replied_ids: the ids the message's ``In-Reply-To`` and ``References`` name.
        now: the time.
    """
    if policy.conversation_rules:
        refusal = _state_and_blocks(fold, sender_slot=sender_slot, support=support_involved)
        if refusal is not None:
            return refusal
    direction = Direction.OUTBOUND if to_customer else Direction.INBOUND
    window = policy.to_customer_window if to_customer else policy.from_customer_window
    if window is not None and _window_closed(fold, window, now):
        other = Direction.INBOUND if to_customer else Direction.OUTBOUND
        if not fold.names(other, replied_ids):
            return _window_refusal(window, to_customer=to_customer)
    cap = policy.to_customer_per_hour if to_customer else policy.from_customer_per_hour
    if cap is not None:
        recent = fold.recent(direction, now, cap)
        if len(recent) >= cap:
            first_at, first_seq = recent[-1]
            whom = "to the customer" if to_customer else "from the customer"
            return RuleRefusal(
                Rule.RATE,
                450,
                "4.7.1",
                f"too many messages {whom} in this conversation (at most {cap} an hour): "
                f"try again after {(first_at + RATE_WINDOW):%H:%M} UTC",
                once=f"rule:rate:{direction.value}:{first_seq}",
            )
    return None


def _state_and_blocks(
    fold: RuleFold, *, sender_slot: str | None, support: bool
) -> RuleRefusal | None:
    if fold.state is ConversationState.CLOSED:
        return RuleRefusal(
            Rule.CLOSED, 550, "5.7.1", "this conversation is closed: no more mail is relayed"
        )
    if fold.state is ConversationState.ON_HOLD and not support:
        return RuleRefusal(
            Rule.ON_HOLD,
            550,
            "5.7.1",
            "this conversation is on hold: only the store's support can write or be written to",
        )
    if sender_slot is not None and sender_slot in fold.blocked:
        return RuleRefusal(
            Rule.BLOCKED, 550, "5.7.1", "this sender was blocked in this conversation"
        )
    return None


def _window_closed(fold: RuleFold, window: Window, now: datetime) -> bool:
    since = fold.events.get(str(window.after))
    return since is not None and now >= since + window.within


def _window_refusal(window: Window, *, to_customer: bool) -> RuleRefusal:
    span = _span(window.within)
    if to_customer:
        reason = (
            f"new messages to the customer are allowed only within {span} after "
            f"{window.after}: reply to one of the customer's messages instead"
        )
    else:
        reason = (
            f"new messages to the store are allowed only within {span} after "
            f"{window.after}: reply to one of the store's messages instead"
        )
    return RuleRefusal(Rule.WINDOW, 550, "5.7.1", reason)


def _span(within: timedelta) -> str:
    """``30 days``, ``1 hour``, ``90 minutes``: the largest unit that divides it."""
    seconds = int(within.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"  # pragma: no cover - every whole number of seconds divides by 1
