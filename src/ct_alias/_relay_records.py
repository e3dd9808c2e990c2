"""What the relay records: refusals (at most once an hour each), and hand-offs after the fact."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Final

from ._outcomes import STATUS, Outcome, accepted_parts, strip_brackets
from ._returns import count_hard_bounce
from .aliases import Alias
from .errors import CtAliasError, InvalidArgument, StorageError
from .storage.base import Tombstone
from .timeline import AliasEvent, EntryKind, TimelineEntry
from .tracker import Tracker

if TYPE_CHECKING:
    from .relay import _Message
    from .rules import RuleRefusal

__all__ = ["REFUSAL_RECORD_INTERVAL", "RelayRecords"]

logger = logging.getLogger("ct_alias.relay")

#: A refusal of one alias for one reason is recorded at most once per this many seconds.
REFUSAL_RECORD_INTERVAL: Final = 3600
_MAX_REMEMBERED: Final = 10_000


class RelayRecords:
    """The relay's timeline writes; :class:`~ct_alias.relay.Relay` is one."""

    tracker: Tracker
    _recorded: dict[tuple[str, int, str], datetime]

    def _record_refusal(
        self,
        outcome: Outcome,
        message: _Message | None,
        alias: Alias | None,
        rule: RuleRefusal | None = None,
    ) -> None:
        conversation = outcome.conversation
        store = alias.store if alias is not None else outcome.store
        sender = rule.sender if rule is not None else None
        if (
            conversation is None
            or store is None
            or not self._first_refusal(outcome, alias, "" if sender is None else sender.key)
        ):
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
            if rule is None:
                self.tracker.record_event(
                    conversation, AliasEvent.DELIVERY_REJECTED, store=store, data=data
                )
            else:
                data["rule"] = rule.rule.value
                if sender is not None:
                    data["sender"] = sender.role.value
                self.tracker.storage.append(
                    TimelineEntry(
                        conversation,
                        EntryKind.EVENT,
                        AliasEvent.DELIVERY_REJECTED.value,
                        self.tracker.clock.now(),
                        data,
                        dedup_key=rule.once,  # a rate cap's window is recorded once
                        store=store,
                    )
                )
        except StorageError as exc:
            logger.error(  # noqa: TRY400 - one line, no traceback that may quote parameters
                "could not record a refused delivery for conversation %r: %s",
                conversation,
                type(exc).__name__,
            )

    def _first_refusal(self, outcome: Outcome, alias: Alias | None, sender: str = "") -> bool:
        """Whether this refusal is the first of its alias, reason and sender within the interval.

        A probe that repeats one refused alias writes nothing after the first
        time (per relay process).
        """
        now = self.tracker.clock.now()
        subject = alias.key if alias is not None else outcome.recipient.lower()
        key = (subject, outcome.code, outcome.reason + sender)
        last = self._recorded.get(key)
        if last is not None and (now - last).total_seconds() < REFUSAL_RECORD_INTERVAL:
            return False
        if len(self._recorded) >= _MAX_REMEMBERED:
            self._recorded.clear()
        self._recorded[key] = now
        return True

    # -- after the hand-off ----------------------------------------------------

    def delivered(self, outcome: Outcome) -> TimelineEntry | None:
        """Record an accepted message once the next hop has taken it.

        Call it after the hand-off succeeded: the message is recorded on the
        conversation's timeline with the tracker's current time (the time of
        the hand-off, not of the first attempt). Recording it again (a retry
        that was delivered twice) yields the same entry.

        Args:
            outcome: an accepted outcome of :meth:`handle`.

        Returns:
            The timeline entry of the message; ``None`` for a consumed delivery
            report and for a notice the relay wrote itself (to an outside sender
            whose message bounced), neither of which is a message to record.

        Raises:
            InvalidArgument: ``outcome`` was not accepted.
            StorageError: the timeline could not be written (the message *was*
                delivered: do not report a failure to the sender).
        """
        if isinstance(outcome, Outcome) and outcome.accepted and outcome.report:
            return None  # a consumed report, or a notice the relay wrote: nothing to record
        conversation, store, direction, original = accepted_parts(outcome)
        return self.tracker.record_message(
            conversation,
            original,
            direction=direction,
            store=store,
            authentication=outcome.authentication,
            details=outcome.details,
        )

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
        conversation, store, _, _ = accepted_parts(outcome)
        if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code < 600:
            raise InvalidArgument("code", "must be an SMTP failure code (400-599)")
        if not isinstance(status, str) or STATUS.fullmatch(status) is None:
            raise InvalidArgument("status", "must be an enhanced status code such as 5.1.1")
        data: dict[str, object] = {"code": code, "status": status, "hard": bool(permanent)}
        record: Alias | Tombstone | None = None
        with contextlib.suppress(CtAliasError):  # the alias as alias events name it
            record = self.tracker.lookup(strip_brackets(outcome.recipient))
            data.update(ref=record.key, role=record.role.value)
        entry = self.tracker.record_event(
            conversation, AliasEvent.DELIVERY_FAILED, store=store, data=data
        )
        if permanent and isinstance(record, Alias):
            count_hard_bounce(self.tracker, record)
        return entry
