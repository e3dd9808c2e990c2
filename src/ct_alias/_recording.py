"""The tracker's timeline half: recording events and messages, notifying, reading.

:class:`TimelineMethods` is a base of :class:`~ct_alias.Tracker`; its methods
are the tracker's (documented there). It keeps what concerns the timeline out
of ``tracker.py``, which keeps the aliases' side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, overload

from . import _arguments as check
from ._lifecycle import Changes
from ._sealing import RecordSealer
from .aliases import Alias, Role
from .clock import Clock
from .errors import InvalidArgument, MissingParticipant
from .policy import Policy
from .storage.base import ParticipantsAppend, Storage
from .timeline import Direction, EntryKind, OrderEvent, Timeline, TimelineEntry
from .vocabulary import CRITICAL_EVENTS, DEFAULT_STORE, RuleEvent

if TYPE_CHECKING:
    from .auth import Authentication
    from .metrics import Calendar, ResponseTimes
    from .storage.base import MessageScan

__all__ = ["TimelineMethods"]


class TimelineMethods:
    """The timeline methods of :class:`~ct_alias.Tracker`, which provides the rest."""

    _storage: Storage
    _clock: Clock
    _records: RecordSealer

    if TYPE_CHECKING:  # provided by Tracker

        @property
        def domains(self) -> frozenset[str]: ...

        def aliases(self, conversation: str, *, store: str = ...) -> list[Alias]: ...

        def policy_for(self, store: str) -> Policy: ...

        def _why_unreadable(self, alias: Alias) -> str | None: ...

        def _ending(
            self,
            store: str,
            conversation: str,
            at: datetime,
            event: str | None,
            grace: timedelta | None,
        ) -> Changes: ...

        def _apply(self, changes: Changes) -> tuple[list[Alias], list[TimelineEntry]]: ...

        def opted_out(self, conversation: str, *, store: str = ...) -> bool: ...

        def unsubscribe_address(self, customer: Alias) -> str | None: ...

    # -- timeline --------------------------------------------------------------

    def record_event(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        store: str = DEFAULT_STORE,
        at: datetime | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        """Record an order event (or a host-defined one) on the timeline.

        If the store's policy lists the event in ``end_on``, the
        conversation's aliases end (working on through the policy's grace
        period counted from ``at``), in the same transaction.

        Args:
            conversation: the conversation (order id).
            store: whose conversation (conversations are per store).
            event: an :class:`OrderEvent`, or a host-defined name (1-64 printable characters).
            at: when it happened (aware); default now.
            data: JSON-compatible details, kept as given.

        Returns:
            The stored entry.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        name = check.event_name(event)
        at = self._clock.now() if at is None else check.moment("at", at)
        details = check.json_data(data)
        entry = TimelineEntry(conversation, EntryKind.EVENT, name, at, details, store=store)
        endings = self._ending(store, conversation, at, name, None)
        _, stored = self._apply(Changes(endings.changes, (entry, *endings.entries)))
        return stored[0]

    def record_message(
        self,
        conversation: str,
        message: bytes | bytearray | memoryview | EmailMessage,
        *,
        direction: Direction | str,
        store: str = DEFAULT_STORE,
        authentication: Authentication | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        """Record an e-mail message on the conversation's timeline.

        Only a summary is kept (addresses, subject, date, ids, size, first
        words, attachment names); participants' addresses are kept as
        references to their aliases, never as real addresses. Recording the
        same message twice (same Message-ID, or the same bytes when it has
        none) yields one entry. Malformed messages are recorded with what
        could be read, and their defects noted.

        Args:
            conversation: the conversation.
            message: raw RFC 5322 bytes, or an :class:`email.message.EmailMessage`.
            direction: :class:`Direction` (``"inbound"`` or ``"outbound"``).
            store: whose conversation (conversations are per store).
            authentication: the verdict on the message's author (see
                :mod:`ct_alias.auth`), recorded with it. Unless it vouches for
                the ``From:`` domain, the author is recorded as unverified and
                never as the participant whose address it claims.
            details: JSON-compatible notes recorded under ``"relay"`` (the
                relay records what it left out of the delivered header).

        Returns:
            The stored entry (the first one, for a duplicate).
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        direction = check.direction(direction)
        # Mail parsing is imported on first use: importing ct_alias stays light.
        from ._messages import message_data, message_dedup_key  # noqa: PLC0415
        from .mail import summarize  # noqa: PLC0415

        summary = summarize(check.message(message))
        relay = None if details is None else check.json_data(details)
        at = self._clock.now()
        domains = self.domains  # read before the write transaction: make must not touch storage

        def make(participants: list[Alias]) -> TimelineEntry:
            """The sealed entry, participants' addresses as references to their aliases."""
            data = message_data(
                summary,
                [self._records.present(alias) for alias in participants],
                authentication=authentication,
                alias_domains=domains,
            )
            if relay is not None:
                data["relay"] = relay
            entry = TimelineEntry(
                conversation,
                EntryKind.MESSAGE,
                direction.value,
                at,
                data,
                dedup_key=message_dedup_key(summary),
                store=store,
            )
            return self._records.seal_entry(entry)

        storage = self._storage
        if isinstance(storage, ParticipantsAppend):
            # the participants read in the transaction that writes: one call, not two
            stored, _ = storage.append_made(conversation, store=store, make=make)
        else:
            stored, _ = storage.append(make(storage.aliases(conversation, store=store)))
        return self._records.open_entry(stored)

    @overload
    def notify(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        subject: str,
        text: str,
        html: str | None = ...,
        store: str = ...,
        from_name: str = ...,
        critical: Literal[True] = ...,
    ) -> EmailMessage: ...

    @overload
    def notify(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        subject: str,
        text: str,
        html: str | None = ...,
        store: str = ...,
        from_name: str = ...,
        critical: bool,
    ) -> EmailMessage | None: ...

    def notify(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        store: str = DEFAULT_STORE,
        from_name: str = "",
        critical: bool = True,
    ) -> EmailMessage | None:
        """Compose the store's e-mail to the customer for an order step, and record it.

        The message is from the store's alias (``From`` and ``Reply-To``) to the
        customer's real address, with a Message-ID under the alias domain. The
        event and the message are both recorded; the message is returned for
        the host to send (with :mod:`smtplib` or its provider).

        Args:
            conversation: the conversation (order id).
            event: the order step.
            subject: the subject line.
            text: the plain-text body.
            html: an optional HTML alternative.
            store: whose order (conversations are per store): the customer and
                store aliases of that store's conversation are used.
            from_name: a display name for the ``From`` header (the store's name).
            critical: ``False`` for a message the customer may opt out of (a
                review request, a survey): it carries ``List-Unsubscribe`` (a
                signed, expiring mailto address under the alias domain, and
                the policy's ``unsubscribe_url`` with ``List-Unsubscribe-Post``
                for one-click opt-out, RFC 8058), and once the customer opted
                out it is recorded as ``notification-suppressed`` and not
                composed. The order steps (:data:`~ct_alias.vocabulary.CRITICAL_EVENTS`)
                are always critical.

        Returns:
            The message, or ``None`` when a non-critical message was suppressed.

        Raises:
            MissingParticipant: no usable customer alias, or no store alias of that store.
            InvalidArgument: a subject with line breaks, bodies that are not
                text, or ``critical=False`` for an order step.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        name = check.event_name(event)
        subject = check.text("subject", subject, check.MAX_SUBJECT)
        from_name = check.text("from_name", from_name, check.MAX_FROM_NAME)
        for field_name, body in (("text", text), ("html", html)):
            if body is not None and not isinstance(body, str):
                raise InvalidArgument(field_name, f"expected a str, not {type(body).__name__}")
        if not isinstance(critical, bool):
            raise InvalidArgument("critical", "expected True or False")
        if not critical and name in CRITICAL_EVENTS:
            raise InvalidArgument("critical", f"{name} is an order step: its message always goes")
        now = self._clock.now()
        aliases = [
            a
            for a in self.aliases(conversation, store=store)
            if a.usable_at(now) and self._why_unreadable(a) is None  # never from a dead alias
        ]
        customer = _latest(aliases, Role.CUSTOMER)
        if customer is None:
            raise MissingParticipant(conversation, Role.CUSTOMER.value)
        shop = _latest(aliases, Role.STORE)
        if shop is None:
            raise MissingParticipant(conversation, Role.STORE.value)
        unsubscribe: list[str] = []
        if not critical:
            if self.opted_out(conversation, store=store):
                self._apply(Changes((), (_suppressed(conversation, store, name, subject, now),)))
                return None
            unsubscribe = self._unsubscribe_uris(customer)
        from ._messages import compose_notification  # noqa: PLC0415 - see record_message

        message = compose_notification(
            sender=shop,
            recipient=customer,
            subject=subject,
            text=text,
            html=html,
            now=now,
            domain=self.policy_for(shop.store).domain,
            sender_name=from_name,
            unsubscribe=unsubscribe,
        )
        self.record_event(conversation, name, store=store, at=now)
        self.record_message(conversation, message, direction=Direction.OUTBOUND, store=store)
        return message

    def _unsubscribe_uris(self, customer: Alias) -> list[str]:
        """The ``List-Unsubscribe`` URIs of a non-critical message to ``customer``."""
        address = self.unsubscribe_address(customer)
        if address is None:
            return []
        uris = [f"mailto:{address}?subject=unsubscribe"]
        template = self.policy_for(customer.store).unsubscribe_url
        if template is not None:
            uris.insert(0, template.replace("{token}", address.partition("@")[0]))
        return uris

    def timeline(
        self,
        conversation: str,
        *,
        store: str = DEFAULT_STORE,
        limit: int | None = None,
        after: str | None = None,
    ) -> Timeline:
        """Read a conversation's timeline: its participants and entries, in order.

        Args:
            conversation: the conversation.
            store: whose conversation (conversations are per store).
            limit: at most this many entries (a page); default all.
            after: the ``next_after`` of the previous page.

        Raises:
            InvalidArgument: a bad limit or cursor.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        if limit is not None:
            limit = check.positive_int("limit", limit)
        position = None if after is None else check.cursor(after)
        entries = self._storage.entries(
            conversation, store=store, after=position, limit=None if limit is None else limit + 1
        )
        next_after = None
        if limit is not None and len(entries) > limit:
            entries = entries[:limit]
            next_after = entries[-1].cursor
        return Timeline(
            conversation=conversation,
            participants=tuple(self.aliases(conversation, store=store)),
            entries=tuple(self._records.open_entry(e) for e in entries),
            next_after=next_after,
            now=self._clock.now(),
            store=store,
        )

    def response_times(
        self,
        *,
        store: str = DEFAULT_STORE,
        since: datetime,
        until: datetime | None = None,
        calendar: Calendar | None = None,
        conversations: Iterable[str] | None = None,
    ) -> ResponseTimes:
        """The store's median reply time over the customers' turns of a period.

        What counts as a customer message, a store reply and a turn is in
        :mod:`ct_alias.metrics` (automatic messages and bounces never count).
        Turns that start from ``since`` until ``until`` count; their replies
        may come later. Only messages recorded from ``since`` are read: with
        a storage that reads a store's messages by time
        (:class:`~ct_alias.storage.MessageScan`: the memory and SQL storages),
        in pages of 500 over all its conversations; otherwise name the
        ``conversations``, whose timelines are read from ``since`` only.

        Args:
            store: whose conversations.
            since: the start of the period (aware).
            until: its end (aware); default now.
            calendar: ``(start, end) -> timedelta``, how much of a wait counts
                (business hours); default all of it.
            conversations: only these conversations (required when the
                storage cannot read by time).

        Raises:
            InvalidArgument: a bad argument, or no ``conversations`` for a
                storage that cannot read a store's messages by time.
        """
        from . import metrics  # noqa: PLC0415 - loaded when used
        from .storage.base import MessageScan  # noqa: PLC0415

        store = check.store(store)
        since = check.moment("since", since)
        until = self._clock.now() if until is None else check.moment("until", until)
        if conversations is not None:
            if isinstance(conversations, str):
                raise InvalidArgument("conversations", "expected a collection of ids, not one str")
            names = [check.conversation(c) for c in conversations]
            entries = self._messages_of(store, names, since)
        elif isinstance(self._storage, MessageScan):
            entries = self._store_messages(self._storage, store, since)
        else:
            raise InvalidArgument(
                "conversations", "this storage cannot read a store's messages by time: name them"
            )
        return metrics.response_times(
            entries, store=store, since=since, until=until, calendar=calendar
        )

    def _store_messages(
        self, scan: MessageScan, store: str, since: datetime
    ) -> Iterator[TimelineEntry]:
        after: tuple[datetime, int] | None = None
        while True:
            page = scan.store_messages(store, since=since, after=after, limit=_PAGE)
            for entry in page:
                yield self._records.open_entry(entry)
            if len(page) < _PAGE:
                return
            after = (page[-1].at, page[-1].seq or 0)

    def _messages_of(
        self, store: str, conversations: list[str], since: datetime
    ) -> Iterator[TimelineEntry]:
        for conversation in dict.fromkeys(conversations):
            after = (since, -1)
            while True:
                page = self._storage.entries(conversation, store=store, after=after, limit=_PAGE)
                for entry in page:
                    if entry.kind is EntryKind.MESSAGE:
                        yield self._records.open_entry(entry)
                if len(page) < _PAGE:
                    break
                after = (page[-1].at, page[-1].seq or 0)


#: Entries read per storage call by :meth:`TimelineMethods.response_times`.
_PAGE = 500


def _suppressed(
    conversation: str, store: str, event: str, subject: str, at: datetime
) -> TimelineEntry:
    return TimelineEntry(
        conversation,
        EntryKind.EVENT,
        RuleEvent.NOTIFICATION_SUPPRESSED.value,
        at,
        {"event": event, "subject": subject, "reason": "the customer opted out"},
        store=store,
    )


def _latest(aliases: list[Alias], role: Role) -> Alias | None:
    for alias in reversed(aliases):
        if alias.role is role:
            return alias
    return None
