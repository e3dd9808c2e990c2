"""What the timeline keeps of a message: a summary read from its headers and first words."""

from __future__ import annotations

import email.policy
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Final

from attrs import field, frozen

from ..errors import InvalidArgument, MalformedMessage
from ._addresses import parse_addresses
from ._headers import (
    LF,
    HeaderField,
    bounded_header,
    bytes_argument,
    header_bounds,
    read_fields,
)
from ._mime import Structure, content_of
from ._text import first_words

__all__ = ["MAX_HEADER", "MessageSummary", "message_ids", "summarize"]

#: Fields RFC 5322 3.6 allows at most once.
_SINGLE: Final = (
    "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To",
    "References", "Subject", "Date",
)  # fmt: skip
_MAX_DEFECTS: Final = 50
#: The message's header block is read up to this many octets (Postfix's default
#: header_size_limit is 100 KiB) and this many fields (real messages have dozens).
MAX_HEADER: Final = 128 * 1024
_MAX_FIELDS: Final = 1000
_MAX_IDS: Final = 100
#: A longer message id cannot be on one line (RFC 5322): it is ignored.
_MAX_ID_LENGTH: Final = 998

Mailboxes = tuple[tuple[str, str], ...]


@frozen(kw_only=True)
class MessageSummary:
    """A summary of one e-mail message, for an order's timeline.

    Every text in it is display-safe (no control characters or line breaks).

    Attributes:
        message_id: the Message-ID without angle brackets or whitespace, or
            None (also for an id longer than 998 characters).
        in_reply_to: the message ids of In-Reply-To.
        references: the message ids of References (at most 100).
        from_: the ``(display name, address)`` pairs of the first From field.
        to: the pairs of all To fields.
        cc: the pairs of all Cc fields.
        reply_to: the pairs of the first Reply-To field.
        subject: the Subject, RFC 2047-decoded; ``""`` if there is none.
        date: the Date as an aware UTC datetime (a date without a zone is
            taken as UTC), or None when missing or unreadable.
        size: the length of the raw message in octets.
        first_words: at most ``limit`` characters of the first text/plain
            part, else of the first text/html part's visible text,
            whitespace collapsed, cut at a word boundary.
        has_attachment: whether any part is an attachment: a part with
            ``Content-Disposition: attachment``, or a non-text part with a
            file name that is not a multipart.
        attachment_names: the file names of the attachments that have one
            (``filename`` or ``name`` parameter, RFC 2231 and RFC 2047
            decoded), in order; at most 100.
        content_type: the top-level content type, lower-case.
        is_report: whether the message is a ``multipart/report`` (a DSN,
            a bounce).
        content_hash: the SHA-256 of the raw message, hex.
        defects: notes of what was malformed (at most 50).
        automatic: whether the message says it was sent by a program, not a
            person (RFC 3834): an ``Auto-Submitted`` field other than ``no``,
            ``Precedence: bulk``, ``junk``, ``list`` or ``auto_reply``, an
            ``X-Autoreply`` or ``X-Autorespond`` field, or a report.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_: Mailboxes = field(repr=False)
    to: Mailboxes = field(repr=False)
    cc: Mailboxes = field(repr=False)
    reply_to: Mailboxes = field(repr=False)
    subject: str
    date: datetime | None
    size: int
    first_words: str = field(repr=False)
    has_attachment: bool
    attachment_names: tuple[str, ...]
    content_type: str
    is_report: bool
    content_hash: str
    defects: tuple[str, ...]
    automatic: bool = False


#: ``Precedence`` values that mark automatic mail (RFC 3834 section 2, common use).
_AUTOMATIC_PRECEDENCE: Final = frozenset({"bulk", "junk", "list", "auto_reply"})


def _automatic(headers: _Headers, is_report: bool) -> bool:  # noqa: FBT001
    """Whether the fields say a program sent the message (see ``MessageSummary.automatic``)."""
    auto = headers.first("Auto-Submitted")
    if auto is not None and auto.value.partition(";")[0].strip().lower() not in ("", "no"):
        return True
    precedence = headers.first("Precedence")
    if precedence is not None and precedence.value.strip().lower() in _AUTOMATIC_PRECEDENCE:
        return True
    return is_report or any(headers.first(n) for n in ("X-Autoreply", "X-Autorespond"))


def message_ids(value: str, *, single: bool = False) -> tuple[str, ...]:
    """The ``<...>`` message ids of a field, brackets and whitespace removed.

    Without any bracket, the whitespace-separated words are taken (the
    whole value with whitespace removed when ``single``). Ids longer than
    998 characters are left out.
    """
    ids: list[str] = []
    rest = value
    while len(ids) < _MAX_IDS:
        start = rest.find("<")
        end = rest.find(">", start + 1)
        if start < 0 or end < 0:
            break
        ident = "".join(rest[start + 1 : end].split())
        if 0 < len(ident) <= _MAX_ID_LENGTH:
            ids.append(ident)
        rest = rest[end + 1 :]
    if not ids and "<" not in value:
        words = ["".join(value.split())] if single else value.split()[:_MAX_IDS]
        ids = [w for w in words if 0 < len(w) <= _MAX_ID_LENGTH]
    return tuple(ids)


def _date(field_: HeaderField | None, defects: list[str]) -> datetime | None:
    if field_ is None:
        defects.append("no Date field")
        return None
    try:
        parsed = parsedate_to_datetime(field_.unfolded)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, IndexError):
        defects.append("unreadable Date field")
        return None


class _Headers:
    """The top-level fields by lower-case name, with the defects noted while reading them."""

    def __init__(self, fields: list[HeaderField], defects: list[str]) -> None:
        self.fields = fields
        self.defects = defects
        self.by_name: dict[str, list[HeaderField]] = {}
        for f in fields:
            self.by_name.setdefault(f.name.lower(), []).append(f)
            if b"\0" in f.raw:
                defects.append(f"NUL byte in the {f.name or 'header'} field")
            elif not f.raw.isascii() and not _is_utf8(f.raw):
                defects.append(f"8-bit bytes that are not UTF-8 in the {f.name} field")
        for name in _SINGLE:
            count = len(self.by_name.get(name.lower(), ()))
            if count > 1:
                defects.append(f"{count} {name} fields")

    def first(self, name: str) -> HeaderField | None:
        found = self.by_name.get(name.lower())
        return found[0] if found else None

    def mailboxes(self, name: str, *, every: bool = False) -> Mailboxes:
        fields = self.by_name.get(name.lower(), [])
        pairs: list[tuple[str, str]] = []
        for f in fields if every else fields[:1]:
            try:
                found, unusable = parse_addresses(f.unfolded)
            except MalformedMessage as exc:
                self.defects.append(f"the {name} field: {exc.reason}")
                continue
            pairs += found
            if unusable:
                self.defects.append(f"{unusable} unusable address(es) in the {name} field")
        return tuple(pairs)

    def text(self, name: str) -> str:
        found = self.first(name)
        return "" if found is None else found.value

    def ids(self, name: str, *, single: bool = False) -> tuple[str, ...]:
        found = self.first(name)
        return () if found is None else message_ids(found.unfolded, single=single)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _raw(message: object) -> bytes:
    if isinstance(message, EmailMessage):
        return message.as_bytes(policy=email.policy.SMTP)
    try:
        return bytes_argument("message", message)
    except InvalidArgument:
        raise InvalidArgument(
            "message", f"expected bytes or an EmailMessage, not {type(message).__name__}"
        ) from None


def _header_start(data: bytes, defects: list[str]) -> int:
    """Where the header block starts: after an mbox ``From `` line, if there is one."""
    if not data.startswith(b"From "):
        return 0
    defects.append("starts with an mbox 'From ' line")
    newline = data.find(LF)
    return len(data) if newline < 0 else newline + 1


def _top_level(data: bytes, defects: list[str]) -> tuple[list[HeaderField], int | None]:
    """The message's header fields, and where its body starts (None: not to be read)."""
    start = _header_start(data, defects)
    bounds = bounded_header(data, start, len(data), MAX_HEADER)
    body_start: int | None
    if bounds is None:
        defects.append(f"header block longer than {MAX_HEADER} octets: the rest is not read")
        header_end, body_start = header_bounds(data, start, start + MAX_HEADER)[0], None
    else:
        header_end, body_start = bounds
    fields = read_fields(data[start:header_end], _MAX_FIELDS + 1)
    if len(fields) > _MAX_FIELDS:
        defects.append(f"header fields beyond the first {_MAX_FIELDS} not read")
    if not fields:
        defects.append("no header fields: not an RFC 5322 message")
    elif body_start is not None and header_end == body_start < len(data):
        defects.append("no empty line between the header and the body")
    return fields[:_MAX_FIELDS], body_start


def summarize(message: bytes | EmailMessage, *, limit: int = 200) -> MessageSummary:
    r"""Summarise a message for the timeline; never fails on bytes, however malformed.

    Only header blocks are parsed (the message's and each MIME part's);
    parts are found by their boundary lines; attachments are never decoded,
    and of the text only what the first words need is decoded. A message
    that starts with an mbox ``From `` line is read after it. Data without
    any header field (not RFC 5322, e.g. an Outlook ``.msg`` file) gives an
    ``application/octet-stream`` summary with no first words. What was
    malformed is noted in :attr:`MessageSummary.defects`.

    >>> s = summarize(
    ...     b"From: Loja <loja@example.com>\r\nSubject: Pedido enviado\r\n\r\n"
    ...     b"Seu pedido foi enviado.\r\n"
    ... )
    >>> s.from_, s.subject, s.first_words
    ((('Loja', 'loja@example.com'),), 'Pedido enviado', 'Seu pedido foi enviado.')
    >>> s.defects
    ('no Date field',)

    Args:
        message: the raw message, or an :class:`~email.message.EmailMessage`
            (serialised with ``as_bytes(policy=email.policy.SMTP)`` first).
        limit: the most characters of :attr:`MessageSummary.first_words`.

    Raises:
        InvalidArgument: ``message`` is neither bytes nor an EmailMessage, or
            ``limit`` is not a non-negative int.
    """
    data = _raw(message)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise InvalidArgument("limit", "must be a non-negative int")
    defects: list[str] = []
    fields, body_start = _top_level(data, defects)
    headers = _Headers(fields, defects)
    structure = Structure(data, defects)
    content_type = "application/octet-stream"
    date = None
    if fields:
        if headers.first("From") is None:
            defects.append("no From field")
        date = _date(headers.first("Date"), defects)
        content = content_of(fields, "text/plain", defects)
        content_type = content.content_type
        if body_start is not None:
            structure.entity(content, body_start, len(data))
    source = structure.plain or structure.html
    message_id = headers.ids("Message-ID", single=True)
    return MessageSummary(
        message_id=message_id[0] if message_id else None,
        in_reply_to=headers.ids("In-Reply-To"),
        references=headers.ids("References"),
        from_=headers.mailboxes("From"),
        to=headers.mailboxes("To", every=True),
        cc=headers.mailboxes("Cc", every=True),
        reply_to=headers.mailboxes("Reply-To"),
        subject=headers.text("Subject"),
        date=date,
        size=len(data),
        first_words="" if source is None else first_words(source, limit, defects),
        has_attachment=structure.has_attachment,
        attachment_names=tuple(structure.attachment_names),
        content_type=content_type,
        is_report=content_type == "multipart/report",
        content_hash=hashlib.sha256(data).hexdigest(),
        defects=tuple(dict.fromkeys(defects))[:_MAX_DEFECTS],
        automatic=bool(fields) and _automatic(headers, content_type == "multipart/report"),
    )
