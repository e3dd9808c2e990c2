"""What the relay does with mail that comes back: delivery reports and hard bounces.

A delivery report is consumed, never relayed as it came: it is recorded as a
``delivery-failed`` event (status, hard or soft, the alias; never the text,
which quotes the real address), counted towards the alias's hard bounces,
and, when the message that failed came from an outside contact, answered to
that contact with a short notice naming only the alias.
"""

from __future__ import annotations

import email.policy
import logging
import secrets
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final

from .aliases import Alias, Role
from .mail import Report
from .timeline import AliasEvent
from .tracker import Tracker

__all__ = ["BOUNCED", "count_hard_bounce", "notice", "record_report"]

logger = logging.getLogger(__name__)

#: How many characters of an alias's storage key name it in log lines (not its address: a
#: simple alias contains the real address).
_REF = 12

#: The reason recorded when hard bounces revoke an alias.
BOUNCED: Final = "bounced"


def record_report(tracker: Tracker, alias: Alias, report: Report, *, signed: bool) -> None:
    """Record a report about mail delivered for ``alias``; count a hard bounce.

    Only a report that came to ``alias``'s bounce address (``signed``) counts
    towards revoking it: anyone who knows an alias can send a report with a
    null sender to it, and must not be able to end it so.
    """
    if not report.failed:
        logger.info("a %s report for %s recorded nothing", report.kind or "non-", alias.key[:_REF])
        return
    data: dict[str, object] = {
        "status": report.status,
        "action": report.action,
        "hard": report.hard,
        "source": "report",
        "kind": report.kind,
        "via": "bounce-address" if signed else "alias",
        "ref": alias.key,
        "role": alias.role.value,
    }
    tracker.record_event(
        alias.conversation, AliasEvent.DELIVERY_FAILED, store=alias.store, data=data
    )
    if report.hard and signed:
        count_hard_bounce(tracker, alias)


def count_hard_bounce(tracker: Tracker, alias: Alias) -> bool:
    """Revoke ``alias`` if its hard bounces within the policy's window reached the limit.

    Call it after the hard bounce was recorded. Returns whether it revoked.
    """
    policy = tracker.policy_for(alias.store)
    if not policy.bounce_limit:
        return False
    since = tracker.clock.now() - policy.bounce_window
    hard = sum(
        1
        for entry in tracker.timeline(alias.conversation, store=alias.store).events
        if entry.name == AliasEvent.DELIVERY_FAILED
        and entry.data.get("hard") is True
        and entry.data.get("via") != "alias"  # unsigned reports prove nothing
        and entry.data.get("ref") == alias.key
        and entry.at >= since
    )
    if hard < policy.bounce_limit or not alias.usable_at(tracker.clock.now()):
        return False
    tracker.revoke(alias, reason=BOUNCED)
    logger.info("alias %s revoked after %d hard bounces", alias.key[:_REF], hard)
    return True


def notice(tracker: Tracker, alias: Alias, report: Report) -> tuple[Alias, bytes] | None:
    """The notice to the outside contact whose message to ``alias`` failed, if there is one.

    Only a contact of the same conversation is told, only of a failure, never
    about a message that was itself automatic, and the notice names the alias
    and the status only.

    Returns:
        The contact and the notice's bytes, or ``None``.
    """
    if not report.failed or report.returned_auto or not report.returned_from:
        return None
    now = tracker.clock.now()
    contact = next(
        (
            a
            for a in tracker.aliases(alias.conversation, store=alias.store)
            if a.address == report.returned_from and a.role is Role.CONTACT and a.usable_at(now)
        ),
        None,
    )
    if contact is None:
        return None
    return contact, _compose(tracker, alias, contact, report, now)


def _compose(
    tracker: Tracker, alias: Alias, contact: Alias, report: Report, now: datetime
) -> bytes:
    domain = tracker.policy_for(alias.store).domain
    utf8 = not contact.real_address.isascii()
    message = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    message["From"] = f"Mail Delivery System <mailer-daemon@{domain}>"
    message["To"] = contact.real_address
    message["Subject"] = "Undelivered mail"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    message["Auto-Submitted"] = "auto-replied"
    state = "could not be delivered" if report.hard else "has not been delivered yet"
    status = f" (status {report.status})" if report.status else ""
    message.set_content(
        f"Your message to {alias.address} {state}{status}.\n\n"
        "This notice was sent automatically; please do not reply to it.\n"
    )
    return message.as_bytes()
