"""Reading delivery reports (RFC 3464, RFC 6522 ``multipart/report``) without keeping addresses."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from typing import Final

from attrs import frozen

from ..errors import MalformedMessage
from ._addresses import parse_addresses
from ._headers import parse_headers, split_message

__all__ = ["Report", "is_report", "read_report"]

#: Reports larger than this are read only so far (their first parts say all that matters).
_MAX_REPORT: Final = 1024 * 1024


@frozen
class Report:
    """What the relay keeps of a delivery report: never the addresses it quotes.

    Attributes:
        kind: the ``report-type`` (``delivery-status``, ``disposition-notification``…).
        action: the first recipient's ``Action`` (``failed``, ``delayed``,
            ``delivered``, ``relayed``, ``expanded``), lower case, or ``""``.
        status: the first recipient's ``Status`` (``5.1.1``), or ``""``.
        returned_from: the ``From`` address of the returned message's
            header (the alias it was sent from), or ``""``.
        returned_auto: whether the returned message was itself automatic
            (``Auto-Submitted`` other than ``no``): it is never answered.
    """

    kind: str
    action: str = ""
    status: str = ""
    returned_from: str = ""
    returned_auto: bool = False

    @property
    def failed(self) -> bool:
        """Whether it reports a failure (now, or for now)."""
        return self.action in {"failed", "delayed"} or self.status[:1] in {"4", "5"}

    @property
    def hard(self) -> bool:
        """Whether the failure is permanent: ``Action: failed`` or a ``5.x.x`` status."""
        return self.action == "failed" or self.status.startswith("5")


def _parts(message: Message) -> Iterator[Message]:
    for part in message.walk():
        if isinstance(part, Message):
            yield part


def _status(value: str) -> str:
    words = value.split(maxsplit=1)
    code = words[0] if words else ""
    pieces = code.split(".")
    if len(pieces) == 3 and code[0] in "245" and all(p.isdigit() and len(p) <= 3 for p in pieces):
        return code
    return ""


def is_report(data: bytes) -> bool:
    """Whether a message is a report (``multipart/report``) by its top-level header."""
    for field in parse_headers(split_message(data).headers):
        if field.name.lower() == "content-type":
            return field.value.lower().startswith("multipart/report")
    return False


def read_report(data: bytes) -> Report | None:
    """Read a delivery report (RFC 3464) or other ``multipart/report``; None if it is none.

    Uses the stdlib :mod:`email` package; never fails on bytes. Nothing of
    what the report quotes is kept but its action, status and the returned
    message's sender (an alias, when the relay delivered it).
    """
    if not is_report(data):
        return None
    message = message_from_bytes(data[:_MAX_REPORT], policy=compat32)
    kind = str(message.get_param("report-type", "") or "").lower()
    action = status = returned_from = ""
    returned_auto = False
    for part in _parts(message):
        content_type = part.get_content_type()
        if content_type in {"message/delivery-status", "message/global-delivery-status"}:
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if isinstance(block, Message) and (block.get("Action") or block.get("Status")):
                    action = str(block.get("Action", "")).strip().lower()
                    status = _status(str(block.get("Status", "")))
                    break
        elif content_type in {"text/rfc822-headers", "message/rfc822", "message/global-headers"}:
            payload: object = (
                part.get_payload(decode=True)
                if content_type == "text/rfc822-headers"
                else part.get_payload()
            )
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
                sender, auto = str(headers.get("From", "")), str(headers.get("Auto-Submitted", ""))
            elif isinstance(payload, bytes):
                returned = message_from_bytes(payload, policy=compat32)
                sender, auto = (
                    str(returned.get("From", "")),
                    str(returned.get("Auto-Submitted", "")),
                )
            else:
                continue
            try:
                pairs, _ = parse_addresses(sender) if sender else ([], 0)
            except MalformedMessage:
                pairs = []
            returned_from = pairs[0][1].lower() if len(pairs) == 1 else ""
            returned_auto = bool(auto.strip()) and auto.strip().lower() != "no"
    return Report(kind, action, status, returned_from, returned_auto)
