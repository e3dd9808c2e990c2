"""The relay core: routes mail through aliases, sans-IO (bytes in, decisions out).

:meth:`Relay.handle` takes an SMTP envelope and the raw message and returns one
:class:`Outcome` per recipient: deliver (to the real address, from the
sender's alias, with the rewritten message) or reject, with an SMTP reply code
and an RFC 3463 enhanced status code. Nothing is sent and nothing is dropped:
the SMTP server (:mod:`ct_alias.server`) or any other transport acts on the
outcomes.

Only the header fields that must change are rewritten — ``From``,
``Reply-To``, ``Sender``, and participants' real addresses in ``To``/``Cc`` —
and one trace field naming the conversation is added. Fields that would leak a
participant's real address are removed. The body after the header block is
delivered byte for byte.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Final

from attrs import field, frozen

from ._messages import wire_key
from .aliases import Alias, Role
from .errors import (
    CorruptRecord,
    CtAliasError,
    ExpiredAlias,
    ForgedAlias,
    InvalidAddress,
    InvalidArgument,
    MalformedAlias,
    StorageError,
    UnknownAddressKey,
    UnknownAlias,
)
from .mail import (
    HeaderField,
    addresses,
    format_address,
    get_all,
    parse_headers,
    rewrite_headers,
    split_message,
)
from .timeline import AliasEvent, Direction, TimelineEntry
from .tracker import Tracker

__all__ = ["TRACE_HEADER", "Outcome", "Relay", "RelayResult"]

logger = logging.getLogger(__name__)

#: The trace field the relay adds: it names the conversation, never an address.
TRACE_HEADER: Final = "X-CT-Alias-Conversation"
DEFAULT_MAX_SIZE: Final = 25 * 1024 * 1024
DEFAULT_MAX_HOPS: Final = 3
#: The largest header block the relay reads (Postfix's default is 100 KB).
MAX_HEADER_BYTES: Final = 512 * 1024

_ADDRESS_FIELDS = ("From", "Reply-To", "Sender")
_RECIPIENT_FIELDS = ("To", "Cc")
_INBOUND_ROLES = frozenset({Role.STORE, Role.CONTACT})


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


def _reject(
    recipient: str, code: int, status: str, reason: str, conversation: str | None = None
) -> Outcome:
    return Outcome(recipient, code, status, reason, conversation=conversation)


class _Refused(Exception):
    """Internal: a recipient is refused with this outcome (carried as ``args[0]``)."""


class Relay:
    """Routes messages sent to aliases to the real addresses behind them.

    Args:
        tracker: the tracker whose aliases and timelines are used.
        max_size: the largest message accepted, in bytes (SMTP ``SIZE``).
        max_hops: refuse a message that already passed the relay this many times.
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_hops: int = DEFAULT_MAX_HOPS,
    ) -> None:
        if not isinstance(max_size, int) or max_size < 1:
            raise InvalidArgument("max_size", "must be a positive number of bytes")
        if not isinstance(max_hops, int) or max_hops < 1:
            raise InvalidArgument("max_hops", "must be a positive int")
        self.tracker = tracker
        self.max_size = max_size
        self.max_hops = max_hops

    def __repr__(self) -> str:
        return f"<Relay max_size={self.max_size} max_hops={self.max_hops}>"

    # -- recipients ------------------------------------------------------------

    def check_recipient(self, recipient: str) -> Outcome | None:
        """Decide what can be decided about a recipient before the message arrives.

        An SMTP server calls it at ``RCPT TO`` so refused recipients are refused
        there (the sender's own server bounces; the relay never backscatters).

        A refusal is recorded on the alias's timeline when its conversation is
        known, as in :meth:`handle`.

        Returns:
            A rejection, or ``None`` when the recipient is acceptable so far.
        """
        try:
            self._recipient(recipient)
        except _Refused as refused:
            outcome: Outcome = refused.args[0]
            self._record_refusal(outcome, None, None)
            return outcome
        return None

    def _recipient(self, recipient: str) -> Alias:
        """The working alias behind ``recipient``; raises :class:`_Refused` otherwise."""
        address = _strip_brackets(recipient)
        if not self.tracker.owns(address):
            raise _Refused(
                _reject(recipient, 550, "5.7.1", "relay access denied: not one of our aliases")
            )
        try:
            alias = self.tracker.unmask(address)
        except (MalformedAlias, ForgedAlias, UnknownAlias) as exc:
            logger.warning("refused mail to an invalid alias: %s", exc)
            raise _Refused(_reject(recipient, 550, "5.1.1", "no such alias")) from None
        except ExpiredAlias as exc:
            conversation = self._conversation_of(address)
            raise _Refused(
                _reject(
                    recipient,
                    550,
                    "5.2.1",
                    f"alias no longer works ({exc.reason.value})",
                    conversation,
                )
            ) from None
        except (StorageError, UnknownAddressKey, CorruptRecord):
            # storage down, or a record this relay cannot open (a missing
            # address key): the sender retries while an operator looks
            logger.exception("cannot read the alias of a recipient")
            raise _Refused(
                _reject(recipient, 451, "4.3.0", "temporary failure, try again later")
            ) from None
        if self.tracker.owns(alias.real_address):
            raise _Refused(
                _reject(recipient, 554, "5.4.6", "mail loop: alias to alias", alias.conversation)
            )
        return alias

    def _conversation_of(self, address: str) -> str | None:
        try:
            record = self.tracker.lookup(address)
        except CtAliasError:
            return None
        return record.conversation

    # -- messages --------------------------------------------------------------

    def handle(
        self, mail_from: str, rcpt_tos: Sequence[str], data: bytes | bytearray | memoryview
    ) -> RelayResult:
        """Decide, for each recipient, what to deliver; record the refusals.

        An accepted message is **not** recorded yet: hand it off (deliver
        ``outcome.message`` to ``outcome.deliver_to`` from
        ``outcome.mail_from``), then call :meth:`delivered` when the next hop
        took it, or :meth:`delivery_failed` when it did not. The timeline then
        says what really happened, at the time it happened.

        Each accepted outcome holds its own rewritten copy of the message, so
        memory grows with the number of accepted recipients; an SMTP server
        keeps it to one (``ct-alias serve`` takes one alias per transaction).

        Args:
            mail_from: the envelope sender (``""`` or ``"<>"`` for a bounce).
            rcpt_tos: the envelope recipients.
            data: the raw message (RFC 5322 bytes, as received).

        Returns:
            One outcome per recipient, in order. A refusal is recorded on the
            recipient alias's timeline when its conversation is known;
            refusals of unknown aliases are logged.
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise InvalidArgument("data", f"expected bytes, not {type(data).__name__}")
        message = _Message(data, mail_from)
        outcomes = tuple(self._route(recipient, message) for recipient in rcpt_tos)
        return RelayResult(outcomes)

    def _route(self, recipient: str, message: _Message) -> Outcome:
        try:
            alias = self._recipient(recipient)
        except _Refused as refused:
            outcome: Outcome = refused.args[0]
            self._record_refusal(outcome, message, None)
            return outcome
        try:
            outcome = self._deliver(recipient, alias, message)
        except _Refused as refused:
            outcome = refused.args[0]
            self._record_refusal(outcome, message, alias)
            return outcome
        except (StorageError, UnknownAddressKey, CorruptRecord):
            logger.exception(
                "storage unavailable while relaying to conversation %r", alias.conversation
            )
            return _reject(
                recipient, 451, "4.3.0", "temporary failure, try again later", alias.conversation
            )
        return outcome

    def _deliver(self, recipient: str, alias: Alias, message: _Message) -> Outcome:
        conversation = alias.conversation
        if len(message.data) > self.max_size:
            raise _Refused(
                _reject(
                    recipient,
                    552,
                    "5.3.4",
                    f"message larger than {self.max_size} bytes",
                    conversation,
                )
            )
        if len(message.parts.headers) > MAX_HEADER_BYTES:
            raise _Refused(
                _reject(recipient, 552, "5.3.4", "message header too large", conversation)
            )
        if not message.fields:
            raise _Refused(
                _reject(
                    recipient,
                    554,
                    "5.6.0",
                    "not an Internet message: no header fields",
                    conversation,
                )
            )
        if message.hops >= self.max_hops:
            raise _Refused(
                _reject(
                    recipient,
                    554,
                    "5.4.6",
                    "mail loop: too many hops through the relay",
                    conversation,
                )
            )
        rewrite = _Rewrite(self.tracker, alias, message)
        try:
            data = rewrite.message()
        except InvalidAddress:
            raise _Refused(
                _reject(
                    recipient, 550, "5.1.7", "the sender's address cannot be masked", conversation
                )
            ) from None
        direction = Direction.INBOUND if alias.role in _INBOUND_ROLES else Direction.OUTBOUND
        return Outcome(
            recipient,
            250,
            "2.0.0",
            "accepted",
            deliver_to=alias.real_address,
            mail_from="" if message.bounce else rewrite.envelope_sender,
            message=data,
            conversation=conversation,
            direction=direction,
            original=message.data,
        )

    def _record_refusal(
        self, outcome: Outcome, message: _Message | None, alias: Alias | None
    ) -> None:
        conversation = outcome.conversation
        if conversation is None:
            return
        data: dict[str, object] = {
            "code": outcome.code,
            "status": outcome.status,
            "reason": outcome.reason,
        }
        if message is not None:
            data.update(size=len(message.data), bounce=message.bounce)
        else:
            data["stage"] = "rcpt"
        if alias is not None:
            data.update(ref=alias.key, role=alias.role.value)
        try:
            self.tracker.record_event(conversation, AliasEvent.DELIVERY_REJECTED, data=data)
        except StorageError:
            logger.exception(
                "could not record a refused delivery for conversation %r", conversation
            )

    # -- after the hand-off ----------------------------------------------------

    def delivered(self, outcome: Outcome) -> TimelineEntry:
        """Record an accepted message once the next hop has taken it.

        Call it after the hand-off succeeded: the message is recorded on the
        conversation's timeline with the tracker's current time (the time of
        the hand-off, not of the first attempt). Recording it again (a retry
        that was delivered twice) yields the same entry.

        Args:
            outcome: an accepted outcome of :meth:`handle`.

        Returns:
            The timeline entry of the message.

        Raises:
            InvalidArgument: ``outcome`` was not accepted.
            StorageError: the timeline could not be written (the message *was*
                delivered: do not report a failure to the sender).
        """
        conversation, direction, original = _delivery(outcome)
        return self.tracker.record_message(conversation, original, direction=direction)

    def delivery_failed(
        self, outcome: Outcome, code: int, status: str, *, permanent: bool
    ) -> TimelineEntry:
        """Record that the next hop refused an accepted message (never as a message).

        The ``delivery-failed`` event carries the reply ``code``, the enhanced
        ``status``, whether the failure is ``hard`` (permanent) or soft, and
        the alias as alias events name it (its storage key ``ref`` and its
        ``role``); never the next hop's text, which often quotes the real
        address.

        Args:
            outcome: an accepted outcome of :meth:`handle`.
            code: the SMTP reply code of the refusal (451 when unreachable).
            status: its RFC 3463 enhanced status code, e.g. ``"5.1.1"``.
            permanent: whether the refusal is permanent (5xx).

        Returns:
            The timeline entry of the event.

        Raises:
            InvalidArgument: ``outcome`` was not accepted, or ``code`` or
                ``status`` is not an SMTP code.
            StorageError: the timeline could not be written.
        """
        conversation, _, _ = _delivery(outcome)
        if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code < 600:
            raise InvalidArgument("code", "must be an SMTP failure code (400-599)")
        if not isinstance(status, str) or _STATUS.fullmatch(status) is None:
            raise InvalidArgument("status", "must be an enhanced status code such as 5.1.1")
        data: dict[str, object] = {"code": code, "status": status, "hard": bool(permanent)}
        with contextlib.suppress(CtAliasError):  # the alias as alias events name it
            record = self.tracker.lookup(_strip_brackets(outcome.recipient))
            data.update(ref=record.key, role=record.role.value)
        return self.tracker.record_event(conversation, AliasEvent.DELIVERY_FAILED, data=data)


def _delivery(outcome: Outcome) -> tuple[str, Direction, bytes]:
    if (
        not isinstance(outcome, Outcome)
        or not outcome.accepted
        or outcome.conversation is None
        or outcome.direction is None
        or outcome.original is None
    ):
        raise InvalidArgument("outcome", "must be an accepted outcome of Relay.handle")
    return outcome.conversation, outcome.direction, outcome.original


_STATUS: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


class _Message:
    """The parts of an incoming message the relay looks at, parsed once."""

    def __init__(self, data: bytes, mail_from: str) -> None:
        self.data = data
        self.parts = split_message(data)
        oversized = len(self.parts.headers) > MAX_HEADER_BYTES
        self.fields = [] if oversized else parse_headers(self.parts.headers)
        self.envelope_sender = _strip_brackets(mail_from or "")
        self.bounce = not self.envelope_sender
        trace = TRACE_HEADER.lower()
        self.hops = sum(1 for f in self.fields if f.name.lower() == trace)

    def field_values(self, name: str) -> list[HeaderField]:
        return get_all(self.fields, name)


class _Rewrite:
    """The header rewrite of one message for one recipient alias's conversation."""

    def __init__(self, tracker: Tracker, alias: Alias, message: _Message) -> None:
        self._tracker = tracker
        self._alias = alias
        self._message = message
        self._participants = tracker.aliases(alias.conversation)
        self._by_real = {wire_key(a.real_address): a for a in self._participants}
        self.envelope_sender = ""
        self._masked_keys: set[str] = set()

    def _masked(self, address: str) -> str:
        """The alias that stands for ``address`` in this conversation (masking it if needed)."""
        if self._tracker.owns(address):
            return address.lower()
        self._masked_keys.add(wire_key(address))
        known = self._by_real.get(wire_key(address))
        if known is not None and known.usable_at(self._tracker.clock.now()):
            return known.address
        contact = self._tracker.mask(
            address,
            conversation=self._alias.conversation,
            store=self._alias.store,
            role=Role.CONTACT,
        )
        self._by_real[wire_key(address)] = contact
        return contact.address

    def _first_masked(self, candidates: list[str]) -> str:
        """The alias of the first candidate that can be masked.

        Raises:
            InvalidAddress: none of them can.
        """
        for candidate in candidates:
            if candidate:
                try:
                    return self._masked(candidate)
                except InvalidAddress:
                    continue
        raise InvalidAddress("", "neither the envelope sender nor From can be masked")

    def _mask_field(
        self, fields: list[HeaderField], mask: Callable[[str], str | None]
    ) -> str | None:
        """The new value of an address field, or ``None`` to keep it as it is.

        Only the first of duplicate fields counts (they are folded into one).
        When the field changes, a mailbox that cannot be written back safely
        (an address with spaces or control characters) is left out of it.
        """
        changed = len(fields) > 1
        mailboxes = []
        pairs = [(name, address, mask(address)) for name, address in addresses(fields[0].unfolded)]
        changed = changed or any(new is not None for _, _, new in pairs)
        if not changed:
            return None
        for name, address, new in pairs:
            shown = "" if "@" in name else name  # a display name may carry an address
            try:
                mailboxes.append(format_address(shown, address if new is None else new))
            except InvalidArgument:
                logger.debug("left an unwritable mailbox out of a rewritten field")
        return ", ".join(mailboxes)

    def message(self) -> bytes:
        """The rewritten message bytes (the body is the original's, untouched)."""
        message = self._message
        replace: dict[str, str | None] = {}
        sender_fields = message.field_values("from")
        for name in _ADDRESS_FIELDS:
            fields = message.field_values(name)
            if not fields:
                continue
            try:
                value = self._mask_field(fields, self._masked)
            except InvalidAddress:
                if name != "From":
                    replace[name] = None  # an unmaskable Reply-To or Sender is dropped
                    continue
                if not message.bounce:
                    raise
                value = format_address(
                    "Mail Delivery System", f"mailer-daemon@{self._alias_domain()}"
                )
            if value is not None:
                replace[name] = value
        for name in _RECIPIENT_FIELDS:
            fields = message.field_values(name)
            if fields:
                value = self._mask_field(fields, self._participant_alias)
                if value is not None:
                    replace[name] = value
        senders = [a for f in sender_fields[:1] for _, a in addresses(f.unfolded)]
        if not message.bounce:
            # the envelope sender's alias, else the From's: a message that has
            # neither must not pass for a bounce downstream
            candidates = [message.envelope_sender, *senders[:1]]
            self.envelope_sender = self._first_masked(candidates)
        leaks = self._leaks(senders)
        rewritten = {name.lower() for name in replace}
        kept = b"".join(
            f.raw for f in message.fields if f.name.lower() in rewritten or not _mentions(f, leaks)
        )
        headers = rewrite_headers(
            kept, replace=replace, add=[(TRACE_HEADER, self._alias.conversation)]
        )
        return message.parts.join(headers)

    def _participant_alias(self, address: str) -> str | None:
        known = self._by_real.get(wire_key(address))
        return None if known is None or known.key == self._alias.key else known.address

    def _leaks(self, senders: list[str]) -> list[str]:
        """Real addresses the recipient must not see: everyone's but the recipient's own."""
        own = wire_key(self._alias.real_address)
        leaks = {wire_key(a.real_address) for a in self._participants}
        leaks.update(wire_key(s) for s in senders if not self._tracker.owns(s))
        if self._message.envelope_sender and not self._tracker.owns(self._message.envelope_sender):
            leaks.add(wire_key(self._message.envelope_sender))
        leaks.update(self._masked_keys)
        leaks.discard(own)
        spelled = set()
        for leak in leaks:
            if "@" not in leak:
                continue
            spelled.add(leak)
            local, _, domain = leak.rpartition("@")
            if "xn--" in domain:  # the Unicode spelling of an IDN domain leaks it too
                with contextlib.suppress(UnicodeError):
                    spelled.add(f"{local}@{domain.encode('ascii').decode('idna').lower()}")
        return sorted(spelled)

    def _alias_domain(self) -> str:
        return self._tracker.policy_for(self._alias.store).domain


def _mentions(f: HeaderField, needles: list[str]) -> bool:
    if not needles:
        return False
    haystack = f.value.lower()
    raw = f.raw.decode("utf-8", "replace").lower()
    return any(n in haystack or n in raw for n in needles)


def _strip_brackets(address: str) -> str:
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    return address
