"""What the tracker keeps of a message, and the notifications it composes."""

from __future__ import annotations

import email.policy
import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

from .aliases import Alias
from .errors import InvalidArgument
from .mail import MessageSummary
from .mail._addresses import wire_key
from .timeline import iso_utc

if TYPE_CHECKING:
    from .auth import Authentication

__all__ = ["compose_notification", "message_data", "message_dedup_key", "wire_key"]


def message_data(
    summary: MessageSummary,
    participants: Sequence[Alias],
    *,
    authentication: Authentication | None = None,
    alias_domains: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON-compatible record of a message; participants become references.

    An address that is a participant's alias, or a participant's real address,
    is kept as ``{"name", "ref", "role"}`` (the alias's storage key); any other
    address as it was on the wire. A display name that contains an ``@`` is
    dropped, since it may carry an address.

    With an ``authentication`` that does not vouch for the author's domain,
    the author fields (``From``, ``Reply-To``) are *claims*: a claimed
    participant address or alias is recorded as ``{"name", "unverified":
    true}`` without the address, never as that participant (so is an address
    under one of ``alias_domains``); other claimed addresses keep their
    address, marked unverified.
    """
    by_alias = {alias.address: alias for alias in participants}
    by_real = {wire_key(alias.real_address): alias for alias in participants}

    def refs(pairs: Sequence[tuple[str, str]], *, verified: bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, address in pairs:
            shown = "" if "@" in name else name
            alias = by_alias.get(address.lower()) or by_real.get(wire_key(address))
            if not verified:
                domain = wire_key(address).rpartition("@")[2]
                claimed = alias is not None or any(
                    domain == d or domain.endswith("." + d) for d in alias_domains
                )
                out.append(
                    {"name": shown, "unverified": True}
                    if claimed
                    else {"name": shown, "address": address, "unverified": True}
                )
            elif alias is None:
                out.append({"name": shown, "address": address})
            else:
                out.append({"name": shown, "ref": alias.key, "role": alias.role.value})
        return out

    author = summary.from_[0][1] if summary.from_ else ""
    verified = authentication is None or authentication.vouches_for(
        wire_key(author).rpartition("@")[2]
    )
    data: dict[str, Any] = {
        "messageId": summary.message_id,
        "inReplyTo": list(summary.in_reply_to),
        "references": list(summary.references),
        "from": refs(summary.from_, verified=verified),
        "to": refs(summary.to),
        "cc": refs(summary.cc),
        "replyTo": refs(summary.reply_to, verified=verified),
        "subject": summary.subject,
        "date": iso_utc(summary.date),
        "size": summary.size,
        "firstWords": summary.first_words,
        "hasAttachment": summary.has_attachment,
        "attachmentNames": list(summary.attachment_names),
        "contentType": summary.content_type,
        "isReport": summary.is_report,
        "contentHash": summary.content_hash,
        "defects": list(summary.defects),
    }
    if summary.automatic:  # only then: records of other mail keep their exact shape
        data["automatic"] = True
    if authentication is not None:
        data["authentication"] = authentication.to_dict()
    return data


def message_dedup_key(summary: MessageSummary) -> str:
    """Messages with the same key in one conversation are recorded once.

    The key is a hash of the Message-ID, or of the raw bytes when there is none.
    """
    if summary.message_id:
        digest = hashlib.sha256(summary.message_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"mid:{digest}"
    return f"raw:{summary.content_hash}"


def compose_notification(
    *,
    sender: Alias,
    recipient: Alias,
    subject: str,
    text: str,
    html: str | None,
    now: datetime,
    domain: str,
    sender_name: str = "",
    unsubscribe: Sequence[str] = (),
) -> EmailMessage:
    """The store's message to the customer: from the store's alias to the real address.

    With ``unsubscribe`` URIs it carries ``List-Unsubscribe`` (RFC 2369), and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) when one
    of them is an https URI: never without one.
    """
    utf8 = not recipient.real_address.isascii()
    message = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    try:
        message["From"] = Address(display_name=sender_name, addr_spec=sender.address)
        message["Reply-To"] = sender.address
        message["To"] = recipient.real_address
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain=domain)
        # an order step is sent by a program (RFC 3834): no vacation reply answers it,
        # and response metrics do not count it as a reply
        message["Auto-Submitted"] = "auto-generated"
        if unsubscribe:
            message["List-Unsubscribe"] = ", ".join(f"<{uri}>" for uri in unsubscribe)
            if any(uri.startswith("https://") for uri in unsubscribe):
                message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("notification", str(exc)) from None
    return message
