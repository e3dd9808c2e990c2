"""The relay's moderation step: build the view once per message, judge it per recipient.

:class:`~ct_alias.relay.Relay` has this base; a relay without moderators
never gets here (it pays one empty-tuple test per recipient).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from attrs import evolve

from ._outcomes import Outcome, reject, temporary_failure
from .aliases import Alias, Role
from .errors import InvalidArgument, ModeratorFailed, StorageError
from .moderation import Finding, Moderator, ascii_reason, moderate, read_view
from .timeline import Direction
from .vocabulary import ModerationEvent

if TYPE_CHECKING:
    from .auth import Authentication
    from .relay import _Message
    from .tracker import Tracker

__all__ = ["RelayModeration", "moderators_argument"]

logger = logging.getLogger("ct_alias.relay")

_INBOUND_ROLES = frozenset({Role.STORE, Role.CONTACT})


def moderators_argument(moderators: object) -> tuple[Moderator, ...]:
    """The ``moderators`` argument of :class:`~ct_alias.relay.Relay`, checked."""
    if moderators is None:
        return ()
    if isinstance(moderators, (str, bytes)) or not isinstance(moderators, Iterable):
        raise InvalidArgument("moderators", "expected a list of callables")
    found = tuple(moderators)
    if not all(callable(m) for m in found):
        raise InvalidArgument("moderators", "each moderator must be callable")
    return found


class RelayModeration:
    """The moderation step of :class:`~ct_alias.relay.Relay`, which provides the rest."""

    tracker: Tracker
    moderators: tuple[Moderator, ...]

    if TYPE_CHECKING:

        def _first_refusal(self, outcome: Outcome, alias: Alias | None) -> bool: ...

        def _authenticate(self, message: _Message) -> Authentication: ...

    def _moderate(
        self, recipient: str, alias: Alias, message: _Message
    ) -> tuple[Outcome | None, tuple[Finding, ...]]:
        """The refusal (recorded) or the flags of the moderators for one recipient.

        A moderator's failure is a ``451 4.3.0`` outcome, logged (the
        moderator's name and the error's type), not recorded.
        """
        if message.view is None:
            parts = message.parts
            message.view = read_view(
                message.fields, parts.body, len(message.data), self.tracker.owns
            )
        author = message.author
        verified = author is not None and self._authenticate(message).vouches_for(author.domain)
        direction = Direction.INBOUND if alias.role in _INBOUND_ROLES else Direction.OUTBOUND
        view = evolve(
            message.view,
            store=alias.store,
            conversation=alias.conversation,
            direction=direction,
            recipient_role=alias.role,
            sender_verified=verified,
        )
        try:
            judgement = moderate(view, self.moderators)
        except ModeratorFailed as exc:
            logger.error(  # noqa: TRY400 - one line: the error's text may quote the message
                "moderator %r failed on a message for conversation %r: %s; answered 451",
                exc.moderator,
                alias.conversation,
                exc.cause,
            )
            return temporary_failure(recipient, alias.conversation, store=alias.store), ()
        refusal = judgement.refusal
        if refusal is None:
            return None, judgement.flags
        outcome = reject(
            recipient,
            550,
            "5.7.1",
            "message refused: " + ascii_reason(refusal.reason),
            alias.conversation,
            store=alias.store,
        )
        self._record_moderation_refusal(outcome, refusal, alias, len(message.data))
        logger.info(
            "moderator %r refused a message for alias %s of conversation %r",
            refusal.moderator,
            alias.address,
            alias.conversation,
        )
        return outcome, judgement.flags

    def _record_moderation_refusal(
        self, outcome: Outcome, refusal: Finding, alias: Alias, size: int
    ) -> None:
        if not self._first_refusal(outcome, alias):
            return
        data: dict[str, object] = {
            "code": outcome.code,
            "status": outcome.status,
            "reason": refusal.reason,
            "moderator": refusal.moderator,
            "size": size,
            "ref": alias.key,
            "role": alias.role.value,
        }
        try:
            self.tracker.record_event(
                alias.conversation, ModerationEvent.REFUSED, store=alias.store, data=data
            )
        except StorageError as exc:
            logger.error(  # noqa: TRY400 - one line, no traceback that may quote parameters
                "could not record a moderated message for conversation %r: %s",
                alias.conversation,
                type(exc).__name__,
            )
