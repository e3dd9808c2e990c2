"""The relay core: routes mail through aliases, sans-IO (bytes in, decisions out).

:meth:`Relay.handle` takes an SMTP envelope and the raw message and returns one
:class:`Outcome` per recipient: deliver (to the real address, from the
sender's alias, with the rewritten message) or reject, with an SMTP reply code
and an RFC 3463 enhanced status code. Nothing is sent and nothing is dropped:
the SMTP server (:mod:`ct_alias.server`) or any other transport acts on the
outcomes.

Who may speak as whom is decided by an :class:`~ct_alias.auth.Authenticator`:
a sender is shown under a participant's alias, or given a contact alias, only
when its domain authenticated the message; everything else is shown under an
address that accepts no mail (or refused, by policy), so that nobody obtains a
working alias for an address that never authenticated mail into the
conversation. The delivered header is an allowlist (see
:data:`~ct_alias.mail.KEPT_FIELDS`): address fields and message ids are
rewritten, trace and provider fields dropped, and one trace field naming the
conversation is added. The body after the header block is delivered byte for
byte.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

from attrs import evolve

from ._outcomes import Outcome, Refused, RelayResult, reject, strip_brackets, temporary_failure
from ._outgoing import MAILER_DAEMON_LOCAL, UNVERIFIED_LOCAL, Author, Outgoing, Refusal, author_of
from ._relay_moderation import RelayModeration, moderators_argument
from ._relay_records import REFUSAL_RECORD_INTERVAL, RelayRecords
from ._returns import notice, record_report
from ._unsubscribe import looks_like_unsubscribe
from .aliases import Alias, Role
from .auth import NOT_AUTHENTICATED, Authentication, Authenticator, Unauthenticated
from .bounces import looks_like_bounce_address
from .errors import (
    CorruptRecord,
    CtAliasError,
    ExpiredAlias,
    ForgedAlias,
    InvalidAddress,
    InvalidArgument,
    MalformedAlias,
    MalformedMessage,
    StorageError,
    UnknownAddressKey,
    UnknownAlias,
)
from .mail import (
    Report,
    get_all,
    get_first,
    has_bare_cr,
    message_ids,
    parse_headers,
    read_report,
)
from .mail._headers import SplitView
from .timeline import Direction
from .tracker import Tracker

if TYPE_CHECKING:
    from .moderation import Finding, MessageView, Moderator

__all__ = [
    "DEFAULT_MAX_HOPS",
    "DEFAULT_MAX_SIZE",
    "MAX_HEADER_BYTES",
    "REFUSAL_RECORD_INTERVAL",
    "TRACE_HEADER",
    "Outcome",
    "Relay",
    "RelayResult",
]

logger = logging.getLogger(__name__)

#: How many characters of an alias's storage key name it in log lines (its address may not:
#: a simple alias contains the real address).
_REF = 12

# Their public home is this module (they are kept in ``_outcomes`` with their helpers).
Outcome.__module__ = RelayResult.__module__ = __name__

#: The trace field the relay adds: it names the conversation, never an address.
TRACE_HEADER: Final = "X-CT-Alias-Conversation"
DEFAULT_MAX_SIZE: Final = 25 * 1024 * 1024
DEFAULT_MAX_HOPS: Final = 3
#: The largest header block the relay reads (Postfix's default is 100 KB).
MAX_HEADER_BYTES: Final = 512 * 1024

_INBOUND_ROLES = frozenset({Role.STORE, Role.CONTACT})
#: The most ids of each of ``In-Reply-To`` and ``References`` the rules look at.
_MAX_REPLIED_IDS: Final = 50
#: How many aliases' conversations the relay remembers between RCPT and DATA (then it forgets all).
_MAX_PLACES: Final = 10_000
#: Local parts at an alias domain that stand for nobody and accept no mail.
_NO_MAIL: Final = {
    UNVERIFIED_LOCAL: "this address accepts no mail: it stands for a sender who was not verified",
    MAILER_DAEMON_LOCAL: "this address accepts no mail: it stands for a mail system",
}


class _Via(enum.Enum):
    """What a recipient address is: an alias, or a signed address the relay consumes mail to."""

    ALIAS = enum.auto()
    BOUNCE = enum.auto()
    UNSUBSCRIBE = enum.auto()


class Relay(RelayRecords, RelayModeration):
    """Routes messages sent to aliases to the real addresses behind them.

    Args:
        tracker: the tracker whose aliases and timelines are used.
        authenticator: who vouches for senders (see :mod:`ct_alias.auth`);
            default :class:`~ct_alias.auth.Unauthenticated`, which vouches for
            nobody: mail is delivered, but no sender is shown under a
            participant's alias or given a contact alias.
        max_size: the largest message accepted, in bytes (SMTP ``SIZE``).
        max_hops: refuse a message that already passed the relay this many times.
        moderators: rules every message to deliver is shown to, in order (see
            :mod:`ct_alias.moderation`): each allows it, flags it (delivered,
            the flag recorded with it) or refuses it (``550 5.7.1``, recorded);
            one that fails makes it ``451 4.3.0``. Default none (no cost).
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        authenticator: Authenticator | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        max_hops: int = DEFAULT_MAX_HOPS,
        moderators: Iterable[Moderator] | None = None,
    ) -> None:
        if not isinstance(max_size, int) or max_size < 1:
            raise InvalidArgument("max_size", "must be a positive number of bytes")
        if not isinstance(max_hops, int) or max_hops < 1:
            raise InvalidArgument("max_hops", "must be a positive int")
        self.tracker = tracker
        self.authenticator: Authenticator = (
            Unauthenticated() if authenticator is None else authenticator
        )
        self.max_size = max_size
        self.max_hops = max_hops
        self.moderators = moderators_argument(moderators)
        self._recorded: dict[tuple[str, int, str], datetime] = {}
        # alias address -> (conversation, store), filled when a recipient is checked. An alias's
        # conversation and store never change, so this is never stale; everything that can
        # change (revoked, expired, ended, purged, its real address) is read again per message.
        self._places: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return (
            f"<Relay authenticator={self.authenticator!r} max_size={self.max_size} "
            f"max_hops={self.max_hops} moderators={len(self.moderators)}>"
        )

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
            self._recipient(recipient, at_data=False)
        except Refused as refused:
            outcome: Outcome = refused.args[0]
            self._record_refusal(outcome, None, None)
            return outcome
        return None

    def _recipient(
        self, recipient: str, *, at_data: bool = True
    ) -> tuple[Alias, _Via, Sequence[Alias] | None]:
        """The alias behind ``recipient``, what named it, and its participants if they were read.

        What named it: an alias, a bounce or an unsubscribe address. At ``DATA``
        (``at_data``) a plain alias checked at ``RCPT`` is found among its
        conversation's participants, read once for the whole message.

        Raises:
            Refused: not an alias (or bounce address) that works.
        """
        address = strip_brackets(recipient)
        if not self.tracker.owns(address):
            raise Refused(
                reject(recipient, 550, "5.7.1", "relay access denied: not one of our aliases")
            )
        local, _, domain = address.lower().rpartition("@")
        if local in _NO_MAIL and domain in self.tracker.domains:
            raise Refused(reject(recipient, 550, "5.7.1", _NO_MAIL[local]))
        if looks_like_bounce_address(local):
            return self._bounce_target(recipient, address), _Via.BOUNCE, None
        if looks_like_unsubscribe(local) and domain in self.tracker.domains:
            return self._unsubscribe_target(recipient, address), _Via.UNSUBSCRIBE, None
        alias, participants = self._alias(recipient, address, at_data=at_data)
        return alias, _Via.ALIAS, participants

    def _bounce_target(self, recipient: str, address: str) -> Alias:
        """The alias a bounce address names; refused like an alias when it does not work."""
        try:
            return self.tracker.bounced(address)
        except (MalformedAlias, ForgedAlias, UnknownAlias, ExpiredAlias):
            raise Refused(reject(recipient, 550, "5.1.1", "no such bounce address")) from None
        except (StorageError, UnknownAddressKey, CorruptRecord) as exc:
            logger.error("cannot read the alias of a bounce address: %s", type(exc).__name__)  # noqa: TRY400
            raise Refused(temporary_failure(recipient)) from None

    def _unsubscribe_target(self, recipient: str, address: str) -> Alias:
        """The customer alias an unsubscribe address names; refused when it does not work."""
        try:
            return self.tracker.unsubscribed(address)
        except (MalformedAlias, ForgedAlias, UnknownAlias, ExpiredAlias):
            raise Refused(reject(recipient, 550, "5.1.1", "no such unsubscribe address")) from None
        except (StorageError, UnknownAddressKey, CorruptRecord) as exc:
            logger.error("cannot read the alias of an unsubscribe address: %s", type(exc).__name__)  # noqa: TRY400
            raise Refused(temporary_failure(recipient)) from None

    def _alias(
        self, recipient: str, address: str, *, at_data: bool
    ) -> tuple[Alias, Sequence[Alias] | None]:
        """The working alias behind ``address`` (and the participants read); else :class:`Refused`.

        One storage read per step: at ``RCPT`` the alias itself; at ``DATA``, when
        ``RCPT`` told its conversation, the conversation's participants, read
        *now* (after ``RCPT``): the alias's state is taken from that fresh read, so
        a revocation, an erasure or an end between ``RCPT`` and ``DATA`` refuses
        the message as before. Nothing decided at ``RCPT`` is trusted at ``DATA``
        except the alias's conversation and store, which never change.
        """
        participants: Sequence[Alias] | None = None
        alias: Alias | None = None
        place = self._places.get(address.lower()) if at_data else None
        try:
            if place is not None:
                participants = self.tracker.aliases(place[0], store=place[1])
                alias = self.tracker.unmask_among(address, participants)
            if alias is None:  # not checked at RCPT, or not among them (purged): ask storage
                participants = None
                alias = self.tracker.unmask(address)
        except (MalformedAlias, ForgedAlias, UnknownAlias) as exc:
            logger.warning("refused mail to an invalid alias: %s", exc)
            raise Refused(reject(recipient, 550, "5.1.1", "no such alias")) from None
        except ExpiredAlias as exc:
            conversation, store = self._place_of(address)
            raise Refused(
                reject(
                    recipient,
                    550,
                    "5.2.1",
                    f"alias no longer works ({exc.reason.value})",
                    conversation,
                    store=store,
                )
            ) from None
        except (StorageError, UnknownAddressKey, CorruptRecord) as exc:
            # storage down, or a record this relay cannot open (a missing
            # address key): the sender retries while an operator looks. One
            # line, no traceback: a driver's traceback may quote parameters.
            logger.error("cannot read the alias of a recipient: %s", type(exc).__name__)  # noqa: TRY400
            raise Refused(temporary_failure(recipient)) from None
        if self.tracker.owns(alias.real_address):
            raise Refused(
                reject(
                    recipient,
                    554,
                    "5.4.6",
                    "mail loop: alias to alias",
                    alias.conversation,
                    store=alias.store,
                )
            )
        if len(self._places) >= _MAX_PLACES:
            self._places.clear()
        self._places[address.lower()] = (alias.conversation, alias.store)
        return alias, participants

    def _place_of(self, address: str) -> tuple[str | None, str | None]:
        """The conversation and store of an alias that no longer works, if known."""
        try:
            record = self.tracker.lookup(address)
        except CtAliasError:
            return None, None
        return record.conversation, record.store

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
            alias, via, participants = self._recipient(recipient)
        except Refused as refused:
            outcome: Outcome = refused.args[0]
            self._record_refusal(outcome, message, None)
            return outcome
        try:
            if via is _Via.UNSUBSCRIBE:
                return self._opt_out(recipient, alias)
            if via is _Via.BOUNCE or (message.bounce and message.report is not None):
                return self._consume(recipient, alias, message, signed=via is _Via.BOUNCE)
            outcome = self._deliver(recipient, alias, message, participants)
        except Refused as refused:
            outcome = evolve(refused.args[0], store=alias.store)
            self._record_refusal(outcome, message, alias, *refused.args[1:])
            return outcome
        except (StorageError, UnknownAddressKey, CorruptRecord) as exc:
            logger.error(  # noqa: TRY400 - one line, no traceback that may quote parameters
                "storage unavailable while relaying to conversation %r: %s",
                alias.conversation,
                type(exc).__name__,
            )
            return temporary_failure(recipient, alias.conversation, store=alias.store)
        return outcome

    def _deliver(
        self,
        recipient: str,
        alias: Alias,
        message: _Message,
        participants: Sequence[Alias] | None = None,
    ) -> Outcome:
        conversation = alias.conversation
        if len(message.data) > self.max_size:
            raise Refused(
                reject(
                    recipient,
                    552,
                    "5.3.4",
                    f"message larger than {self.max_size} bytes",
                    conversation,
                )
            )
        if len(message.parts.headers) > MAX_HEADER_BYTES:
            raise Refused(reject(recipient, 552, "5.3.4", "message header too large", conversation))
        if not message.fields:
            raise Refused(
                reject(
                    recipient,
                    554,
                    "5.6.0",
                    "not an Internet message: no header fields",
                    conversation,
                )
            )
        if message.hops >= self.max_hops:
            raise Refused(
                reject(
                    recipient,
                    554,
                    "5.4.6",
                    "mail loop: too many hops through the relay",
                    conversation,
                )
            )
        if message.malformed is not None:
            raise Refused(reject(recipient, 554, "5.6.0", message.malformed, conversation))
        if message.bare_cr:
            raise Refused(
                reject(
                    recipient,
                    554,
                    "5.6.0",
                    "a header field holds a bare CR: readers would split it differently",
                    conversation,
                )
            )
        if self.moderators:
            refusal, flags = self._moderate(recipient, alias, message)
            if refusal is not None:
                return refusal
            return self._rewrite(recipient, alias, message, flags, participants)
        return self._rewrite(recipient, alias, message, (), participants)

    def _rewrite(
        self,
        recipient: str,
        alias: Alias,
        message: _Message,
        flags: tuple[Finding, ...],
        participants: Sequence[Alias] | None = None,
    ) -> Outcome:
        """The accepted outcome: the message rewritten for ``alias`` (see :class:`Outgoing`)."""
        conversation = alias.conversation
        try:
            outgoing = Outgoing(
                self.tracker,
                alias,
                message.fields,
                author=message.author,
                authentication=self._authenticate(message),
                bounce=message.bounce,
                participants=participants,
            )
            headers = outgoing.header(trace=(TRACE_HEADER, alias.conversation))
        except Refusal as refusal:
            raise Refused(
                reject(recipient, refusal.code, refusal.status, refusal.reason, conversation)
            ) from None
        except MalformedMessage as exc:
            raise Refused(reject(recipient, 554, "5.6.0", exc.reason, conversation)) from None
        except InvalidAddress:
            raise Refused(
                reject(
                    recipient, 550, "5.1.7", "the sender's address cannot be masked", conversation
                )
            ) from None
        self._check_rules(recipient, alias, outgoing, message)
        direction = Direction.INBOUND if alias.role in _INBOUND_ROLES else Direction.OUTBOUND
        details = outgoing.notes()
        if flags:
            details["moderation"] = [finding.to_dict() for finding in flags]
        # One short line per message, formatted only if INFO is on. Aliases are named by
        # their storage key's first characters: a simple alias spells its real address.
        logger.info(
            "accepted %s in %r from %s",
            alias.key[:_REF],
            conversation,
            "unverified" if outgoing.sender is None else outgoing.sender.key[:_REF],
        )
        return Outcome(
            recipient,
            250,
            "2.0.0",
            "accepted",
            deliver_to=alias.real_address,
            mail_from=outgoing.envelope_sender,
            message=message.parts.join(headers),
            conversation=conversation,
            store=alias.store,
            direction=direction,
            original=message.data,
            authentication=self._authenticate(message),
            details=details,
        )

    def _check_rules(
        self, recipient: str, alias: Alias, outgoing: Outgoing, message: _Message
    ) -> None:
        """Raise :class:`Refused` when the conversation rules refuse this message (see rules)."""
        sender = outgoing.sender
        rule = self.tracker.check_rules(
            alias, sender, replied_ids=message.replied_ids, claimed=outgoing.claimed
        )
        if rule is not None:
            raise Refused(
                reject(recipient, rule.code, rule.status, rule.reason, alias.conversation),
                evolve(rule, sender=sender),
            )

    def _opt_out(self, recipient: str, alias: Alias) -> Outcome:
        """Mail to an unsubscribe address: the customer opts out (once); nothing is relayed."""
        self.tracker.unsubscribe(strip_brackets(recipient))
        logger.info("opt-out by mail in conversation %r", alias.conversation)
        return Outcome(
            recipient,
            250,
            "2.0.0",
            "unsubscribed: no more non-critical messages about this order",
            conversation=alias.conversation,
            store=alias.store,
            report=True,
        )

    def _consume(self, recipient: str, alias: Alias, message: _Message, *, signed: bool) -> Outcome:
        """Take a delivery report about mail delivered for ``alias``: record it, relay nothing.

        When the report came to the alias's bounce address (``signed``) and
        the failed message came from an outside contact, the outcome delivers
        a short notice to that contact (from the null sender) instead. An
        unsigned report (a null sender to a plain alias) is only recorded.
        """
        report = message.report or Report(kind="")
        record_report(self.tracker, alias, report, signed=signed)
        logger.info(
            "consumed a %s report for %s in %r (%s)",
            report.kind or "non-",
            alias.key[:_REF],
            alias.conversation,
            report.status or report.action or "no status",
        )
        told = notice(self.tracker, alias, report) if signed else None
        if told is None:
            return Outcome(
                recipient,
                250,
                "2.0.0",
                "delivery report recorded",
                conversation=alias.conversation,
                store=alias.store,
                report=True,
            )
        contact, data = told
        return Outcome(
            recipient,
            250,
            "2.0.0",
            "delivery report recorded; the sender is told",
            deliver_to=contact.real_address,
            mail_from="",
            message=data,
            conversation=alias.conversation,
            store=alias.store,
            report=True,
        )

    def _authenticate(self, message: _Message) -> Authentication:
        """The authenticator's verdict on the message's author, asked once per message."""
        if message.authentication is None:
            author = message.author
            if author is None or message.bounce or self.tracker.owns(author.address):
                message.authentication = NOT_AUTHENTICATED
            else:
                message.authentication = self.authenticator.authenticate(
                    message.fields, message.data, from_domain=author.domain
                )
        return message.authentication


class _Message:
    """The parts of an incoming message the relay looks at, parsed once."""

    def __init__(self, data: bytes, mail_from: str) -> None:
        self.data = data
        self.parts = SplitView(data)  # the body is not copied: join() copies it once
        oversized = len(self.parts.headers) > MAX_HEADER_BYTES
        self.fields = [] if oversized else parse_headers(self.parts.headers)
        self.bare_cr = has_bare_cr(self.parts.headers)
        self.envelope_sender = strip_brackets(mail_from or "")
        self.bounce = not self.envelope_sender
        trace = TRACE_HEADER.lower()
        self.hops = sum(1 for f in self.fields if f.name.lower() == trace)
        self.malformed: str | None = None
        self.author: Author | None = None
        try:
            self.author = author_of(self.fields)
        except MalformedMessage as exc:
            self.malformed = exc.reason
        self.authentication: Authentication | None = None
        self.view: MessageView | None = None  # what moderators see, read once
        content_type = get_first(self.fields, "content-type")
        is_report = content_type is not None and content_type.value.lower().startswith(
            "multipart/report"
        )
        self.report = read_report(data) if is_report else None

    @functools.cached_property
    def replied_ids(self) -> tuple[str, ...]:
        """The ids the message's ``In-Reply-To`` and ``References`` name."""
        ids: list[str] = []
        for name in ("in-reply-to", "references"):
            for found in get_all(self.fields, name)[:1]:
                ids.extend(message_ids(found.unfolded)[:_MAX_REPLIED_IDS])
        return tuple(ids)
