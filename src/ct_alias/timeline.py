"""The order timeline: every message and event of a conversation, in order.

Entries are stored by the :class:`~ct_alias.storage.Storage`; this module
holds their types and the JSON export. Entries never hold a real address, nor
an alias address (a simple alias contains one): participants are referenced
by their storage key (``"ref"``) and resolved when the timeline is read, so
purging or encrypting addresses never leaves a copy behind in the timeline.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from attrs import field, frozen

from .aliases import Alias
from .vocabulary import DEFAULT_STORE, ModerationEvent, OrderEvent, RuleEvent

if TYPE_CHECKING:
    from .metrics import Calendar, ConversationMetrics

__all__ = [
    "FORMAT_VERSION",
    "AliasEvent",
    "Direction",
    "EntryKind",
    "OrderEvent",
    "Timeline",
    "TimelineEntry",
    "alias_to_dict",
]

#: The version of the JSON export's shape (``formatVersion``).
FORMAT_VERSION = 1


class AliasEvent(enum.StrEnum):
    """What the tracker and the relay record about aliases."""

    CREATED = "alias-created"
    UNMASKED = "alias-unmasked"
    ENDED = "alias-ended"
    REACTIVATED = "alias-reactivated"
    REVOKED = "alias-revoked"
    DELIVERY_REJECTED = "delivery-rejected"
    DELIVERY_FAILED = "delivery-failed"
    FORGOTTEN = "forgotten"
    """A person was forgotten (:meth:`Tracker.forget <ct_alias.Tracker.forget>`): counts only."""


class Direction(enum.StrEnum):
    """Which way a message went, seen from the store."""

    INBOUND = "inbound"
    """To the store or its systems (a customer's reply, a carrier's mail to the store)."""
    OUTBOUND = "outbound"
    """From the store or an integrated system to the customer."""


class EntryKind(enum.StrEnum):
    """A timeline entry is an event or a message."""

    EVENT = "event"
    MESSAGE = "message"


JSONValue = Any
"""A value that :func:`json.dumps` accepts."""


@frozen
class TimelineEntry:
    """One record on a conversation's timeline.

    Attributes:
        conversation: the conversation it belongs to (with ``store``).
        kind: event or message.
        name: the event's name (an :class:`OrderEvent`, an :class:`AliasEvent`
            or a host-defined name), or the message's :class:`Direction`.
        at: when it happened (UTC).
        data: JSON-compatible details (a message's summary, an event's data).
        dedup_key: entries with the same conversation and key are recorded once
            (messages: their Message-ID, or content hash when they have none).
        seq: the storage's sequence number, ``None`` before it is stored; equal
            timestamps are ordered by it.
        store: the store (tenant) whose conversation it belongs to: a
            conversation is keyed by (store, conversation), since two stores
            may number their orders alike.
    """

    conversation: str
    kind: EntryKind
    name: str
    at: datetime
    data: Mapping[str, JSONValue] = field(factory=dict)
    dedup_key: str | None = None
    seq: int | None = None
    store: str = field(kw_only=True)

    @property
    def cursor(self) -> str:
        """An opaque position after this entry (``after`` of :meth:`ct_alias.Tracker.timeline`)."""
        if self.seq is None:
            raise ValueError("an entry has no cursor before it is stored")
        return encode_cursor(self.at, self.seq)


def encode_cursor(at: datetime, seq: int) -> str:
    """Encode a timeline position as ``"<epoch microseconds>.<seq>"``."""
    micros = (at - _EPOCH) // _MICROSECOND
    return f"{micros}.{seq}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Decode :func:`encode_cursor`'s text.

    Raises:
        ValueError: not a cursor.
    """
    micros, dot, seq = cursor.partition(".")
    if not dot or not micros.lstrip("-").isdigit() or not seq.isdigit():
        raise ValueError(f"not a timeline cursor: {cursor!r}")
    return _EPOCH + int(micros) * _MICROSECOND, int(seq)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@frozen
class Timeline:
    """A page of a conversation's timeline, with its participants.

    Attributes:
        conversation: the conversation.
        participants: every alias of the conversation, in the order they were issued.
        entries: the entries of this page, in order (time, then sequence).
        next_after: pass it as ``after`` to read the next page; ``None`` on the last page.
        now: the time it was read, for participants' status.
        store: the store whose conversation it is.
    """

    conversation: str
    participants: tuple[Alias, ...]
    entries: tuple[TimelineEntry, ...]
    next_after: str | None
    now: datetime
    store: str = field(default=DEFAULT_STORE, kw_only=True)

    @property
    def messages(self) -> tuple[TimelineEntry, ...]:
        """The message entries."""
        return tuple(e for e in self.entries if e.kind is EntryKind.MESSAGE)

    @property
    def events(self) -> tuple[TimelineEntry, ...]:
        """The event entries."""
        return tuple(e for e in self.entries if e.kind is EntryKind.EVENT)

    def metrics(self, *, calendar: Calendar | None = None) -> ConversationMetrics:
        """Response metrics of this timeline's entries (see :mod:`ct_alias.metrics`).

        Time to the store's first reply, whether a customer message awaits a
        reply and since when, and every reply time. Read the whole timeline
        (no ``limit``): a page gives the metrics of that page.

        Args:
            calendar: ``(start, end) -> timedelta``, how much of a wait counts
                (business hours); default all of it.
        """
        from .metrics import conversation_metrics  # noqa: PLC0415 - it imports this module

        return conversation_metrics(self.entries, calendar=calendar)

    def to_dict(self, *, include_real_addresses: bool = False) -> dict[str, JSONValue]:
        """The timeline as JSON-compatible data, shaped like order-platform conversation APIs.

        Args:
            include_real_addresses: add each participant's real address
                (``realAddress`` / ``email``); off by default.
        """
        by_key = {alias.key: alias for alias in self.participants}
        resolve = _Resolver(by_key, real=include_real_addresses)
        return {
            "formatVersion": FORMAT_VERSION,
            "store": self.store,
            "conversation": self.conversation,
            "participants": [
                alias_to_dict(alias, self.now, real=include_real_addresses)
                for alias in self.participants
            ],
            "messages": [_message(entry, resolve) for entry in self.messages],
            "events": [_event(entry, resolve) for entry in self.events],
            "nextAfter": self.next_after,
        }

    def to_json(self, *, include_real_addresses: bool = False, indent: int | None = None) -> str:
        """:meth:`to_dict`, serialised as JSON text."""
        return json.dumps(
            self.to_dict(include_real_addresses=include_real_addresses),
            indent=indent,
            ensure_ascii=False,
        )

    def to_html(self, *, include_real_addresses: bool = False, stylesheet: bool = True) -> str:
        """The timeline as a self-contained HTML fragment for an order page.

        A ``<section class="ct-timeline">`` with the participants (role, mask
        type, status, alias, expiry) and then the entries in time order:
        messages (direction, sender and recipients, subject, first words,
        attachments, the sender's authentication and an *unverified sender*
        mark, what the relay left out) and events (order steps, alias
        lifecycle; refused deliveries, failed deliveries and unmask audits
        marked). Every value is HTML-escaped; there is no script, no external
        asset and no inline event handler.

        Args:
            include_real_addresses: show each participant's real address, as
                :meth:`to_dict` does; off by default.
            stylesheet: include a small ``<style>`` scoped to ``.ct-timeline``;
                pass ``False`` to style the fragment yourself.
        """
        from ._timeline_html import render_html  # noqa: PLC0415 - it imports this module

        return render_html(
            self, include_real_addresses=include_real_addresses, stylesheet=stylesheet
        )


@overload
def iso_utc(moment: datetime) -> str: ...
@overload
def iso_utc(moment: None) -> None: ...
def iso_utc(moment: datetime | None) -> str | None:
    """A UTC datetime as ISO 8601 ending in ``Z`` (the form of every timestamp we export)."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def alias_to_dict(
    alias: Alias, now: datetime, *, real: bool = False, context: bool = False
) -> dict[str, JSONValue]:
    """The one JSON shape of an alias: the timeline's participants, the CLI's output.

    Args:
        alias: the alias.
        now: the time its ``status`` is given for (see :meth:`Alias.status_at
            <ct_alias.Alias.status_at>`).
        real: include its real address (``realAddress``).
        context: include its ``conversation`` and ``store`` (when it stands alone).
    """
    out: dict[str, JSONValue] = {}
    if context:
        out.update(conversation=alias.conversation, store=alias.store)
    out.update(
        {
            "role": alias.role.value,
            "emailAlias": alias.address,
            "aliasMaskType": alias.strategy,
            "status": alias.status_at(now).value,
            "createdAt": iso_utc(alias.created_at),
            "expiresAt": iso_utc(alias.expires_at),
            "endsAt": iso_utc(alias.ends_at),
        }
    )
    if real:
        out["realAddress"] = alias.real_address
    return out


class _Resolver:
    """Turns stored address references back into export objects."""

    def __init__(self, by_key: Mapping[str, Alias], *, real: bool) -> None:
        self._by_key = by_key
        self._real = real

    def __call__(self, item: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {"name": item.get("name") or ""}
        ref = item.get("ref")
        if ref is None:
            out.update(email=item.get("address"), emailAlias=None, role=None)
            return out
        alias = self._by_key.get(ref)
        if alias is None:  # purged: the address is gone on purpose
            out.update(email=None, emailAlias=None, role=item.get("role"))
            return out
        out.update(emailAlias=alias.address, role=alias.role.value)
        out["email"] = alias.real_address if self._real else None
        return out


def _message(entry: TimelineEntry, resolve: _Resolver) -> dict[str, JSONValue]:
    data = entry.data
    senders = [resolve(item) for item in data.get("from", ())]
    out: dict[str, JSONValue] = {
        "id": str(entry.seq),
        "direction": entry.name,
        "messageId": data.get("messageId"),
        "inReplyTo": list(data.get("inReplyTo", ())),
        "references": list(data.get("references", ())),
        "from": senders[0] if senders else None,
        "to": [resolve(item) for item in data.get("to", ())],
        "cc": [resolve(item) for item in data.get("cc", ())],
        "subject": data.get("subject", ""),
        "firstWords": data.get("firstWords", ""),
        "hasAttachment": bool(data.get("attachmentNames")) or bool(data.get("hasAttachment")),
        "attachmentNames": list(data.get("attachmentNames", ())),
        "size": data.get("size"),
        "date": data.get("date") or iso_utc(entry.at),
        "recordedAt": iso_utc(entry.at),
        "defects": list(data.get("defects", ())),
    }
    flags = moderation_flags(entry)
    if flags:  # only then: exports of unmoderated mail keep their exact shape
        out["moderation"] = flags
    return out


def moderation_flags(entry: TimelineEntry) -> list[dict[str, JSONValue]]:
    """The moderators' flags recorded with a message entry (see :mod:`ct_alias.moderation`)."""
    relay = entry.data.get("relay")
    found = relay.get("moderation") if isinstance(relay, Mapping) else None
    if not isinstance(found, list):
        return []
    return [dict(f) for f in found if isinstance(f, Mapping)]


def _event(entry: TimelineEntry, resolve: _Resolver) -> dict[str, JSONValue]:
    data = dict(entry.data)
    out: dict[str, JSONValue] = {"id": str(entry.seq), "event": entry.name, "at": iso_utc(entry.at)}
    if entry.name in _OWN_EVENTS and "ref" in data:  # a host's own "ref" is just data
        out["participant"] = resolve({"ref": data.pop("ref"), "role": data.get("role")})
    out["data"] = data
    return out


_OWN_EVENTS = (
    frozenset(AliasEvent._value2member_map_)
    | frozenset(ModerationEvent._value2member_map_)
    | frozenset(RuleEvent._value2member_map_)
)
