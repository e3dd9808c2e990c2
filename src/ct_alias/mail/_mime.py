"""Walking the MIME structure of a message by its boundary lines, without decoding bodies.

Only header blocks are parsed. Part bodies are located by offsets into the
original bytes: attachments are never decoded or copied, and a text part is
decoded only later, and only as far as its first words need.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.errors import MessageError
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Final

from attrs import frozen

from ._headers import HeaderField, bounded_header, decode_words, read_fields, safe_text
from ._text import TextSource

__all__ = ["MAX_DEPTH", "MAX_PARTS", "MAX_PART_HEADER", "Content", "Structure", "content_of"]

#: Multiparts nested deeper than this are not entered (a defect).
MAX_DEPTH: Final = 20
#: Parts beyond this many are not looked at (a defect).
MAX_PARTS: Final = 1000
#: Attachment names kept at most, and their length at most.
_MAX_NAMES: Final = 100
_MAX_NAME_LENGTH: Final = 255
#: The header block of a MIME part is read up to this many octets, and this many fields.
MAX_PART_HEADER: Final = 16 * 1024
_MAX_PART_FIELDS: Final = 100
#: False boundary candidates looked at one by one before a regular expression takes over.
_MAX_MISSES: Final = 64
#: The next ``-`` is tried this many times as the start of a boundary before a search for
#: the whole boundary takes over (text may hold many dashes; base64 holds none).
_DASH_HOPS: Final = 16
_MIME_FIELDS: Final = frozenset(
    {"content-type", "content-disposition", "content-transfer-encoding"}
)


@frozen
class Content:
    """What the MIME fields of one entity say."""

    content_type: str
    boundary: str | None
    charset: str | None
    transfer_encoding: str
    disposition: str | None
    filename: str | None

    @property
    def maintype(self) -> str:
        """The part of the content type before the slash."""
        return self.content_type.partition("/")[0]

    @property
    def is_attachment(self) -> bool:
        """Disposition ``attachment``, or a file name on a part neither text nor multipart."""
        if self.maintype == "multipart":
            return False
        return self.disposition == "attachment" or (
            self.filename is not None and self.maintype != "text"
        )


def _params(message: Message, header: str) -> dict[str, str]:
    """The parameters of one field, names lower-cased, RFC 2231 values decoded; first wins."""
    params: dict[str, str] = {}
    for key, value in (message.get_params(header=header) or [])[1:]:
        params.setdefault(key.lower(), collapse_rfc2231_value(value))
    return params


def _filename(value: str | None) -> str | None:
    if value is None:
        return None
    name = " ".join(safe_text(decode_words(value)).split())[:_MAX_NAME_LENGTH]
    return name or None


def _charset(value: str | None) -> str | None:
    if value is None or not value.isascii():
        return None
    return value.strip().lower() or None


def content_of(fields: Sequence[HeaderField], default_type: str, defects: list[str]) -> Content:
    """The content type, parameters, disposition and transfer encoding of an entity.

    Parameters are read with the stdlib's :class:`email.message.Message`
    (RFC 2231 included); RFC 2047 encoded words in a file name are decoded.
    The first field of each name counts.
    """
    message = Message()
    message.set_default_type(default_type)
    for f in fields:
        if f.name.lower() in _MIME_FIELDS:
            message[f.name] = f.unfolded
    content_type = message.get_content_type()
    encoding = message.get("content-transfer-encoding", "").split()
    try:
        type_params = _params(message, "content-type")
        disposition_params = _params(message, "content-disposition")
    except (ValueError, LookupError, UnicodeError, TypeError, MessageError):
        # stdlib bugs on hostile parameters: an RFC 2231 continuation number
        # too long for int() (ValueError), or "name*" next to "name*0" (TypeError)
        defects.append("unreadable MIME parameters")
        type_params = disposition_params = {}
    boundary = type_params.get("boundary")
    return Content(
        content_type=content_type,
        boundary=None if boundary is None else boundary.rstrip(),
        charset=_charset(type_params.get("charset")),
        transfer_encoding=encoding[0].lower() if encoding else "7bit",
        disposition=message.get_content_disposition(),
        filename=_filename(disposition_params.get("filename", type_params.get("name"))),
    )


class _Delimiters:
    """Finds the boundary lines of one multipart body, ``data[start:end]`` (RFC 2046 5.1.1).

    A boundary line starts a line (or the body) with ``--boundary``,
    optionally ``--`` (the close delimiter), then only blanks up to the line
    end. Candidates are found with :meth:`bytes.find`, first by hopping to
    the next few ``-`` (a ``memchr``, about ten times as fast as looking for
    the whole marker: a base64 attachment holds no ``-`` at all, so its body
    is passed over at memory speed); after many false candidates (text that
    merely starts with ``--boundary``, as crafted input may hold by the
    thousand) the search goes on with a regular expression, which checks
    candidates without a Python loop.
    """

    def __init__(self, data: bytes, boundary: bytes, start: int, end: int) -> None:
        self.data = data
        self.marker = b"--" + boundary
        self.start = start
        self.end = end
        self.misses = 0
        self.pattern: re.Pattern[bytes] | None = None

    def next(self, pos: int) -> tuple[int, int, bool] | None:
        """The next boundary line at or after ``pos``: ``(line_start, line_end, is_close)``."""
        data, end = self.data, self.end
        while self.pattern is None:
            at = self._find(pos)
            if at < 0:
                return None
            if at == self.start or data[at - 1] == 0x0A:
                found = self._line(at)
                if found is not None:
                    return found
            self.misses += 1
            if self.misses > _MAX_MISSES:
                self.pattern = re.compile(
                    rb"\n" + re.escape(self.marker) + rb"(--)?[ \t]*(?:\r?\n|\Z)"
                )
            pos = at + 1
        match = self.pattern.search(data, pos - 1, end)
        if match is None:
            return None
        return match.start() + 1, match.end(), match.group(1) is not None

    def _find(self, pos: int) -> int:
        """The next occurrence of the marker at or after ``pos``, or -1.

        The marker starts with ``-``: it is looked for at the next few ``-``
        (each a ``memchr``), then, if none starts it, with one ``find``.
        """
        data, marker, end = self.data, self.marker, self.end
        for _ in range(_DASH_HOPS):
            dash = data.find(b"-", pos, end)
            if dash < 0 or data.startswith(marker, dash, end):
                return dash
            pos = dash + 1
        return data.find(marker, pos, end)

    def _line(self, at: int) -> tuple[int, int, bool] | None:
        data, end = self.data, self.end
        after = at + len(self.marker)
        close = data.startswith(b"--", after, end)
        if close:
            after += 2
        while after < end and data[after] in b" \t":
            after += 1
        if after == end:
            return at, end, close
        if data[after] == 0x0A:
            return at, after + 1, close
        if data.startswith(b"\r\n", after, end):
            return at, after + 2, close
        return None


def _before_line_break(data: bytes, start: int, at: int) -> int:
    """``at``, moved before the line break that belongs to the boundary line after it."""
    if at > start and data[at - 1] == 0x0A:
        at -= 1
        if at > start and data[at - 1] == 0x0D:
            at -= 1
    return at


class Structure:
    """The MIME walk of one message: text parts found, attachments, defects."""

    def __init__(self, data: bytes, defects: list[str]) -> None:
        self.data = data
        self.defects = defects
        self.parts = 0
        self.plain: TextSource | None = None
        self.html: TextSource | None = None
        self.has_attachment = False
        self.attachment_names: list[str] = []

    def entity(self, content: Content, start: int, end: int, depth: int = 0) -> None:
        """Look at an entity whose body is ``data[start:end]``."""
        if content.maintype == "multipart":
            self._multipart(content, start, end, depth)
        elif content.is_attachment:
            self.has_attachment = True
            if content.filename is not None and len(self.attachment_names) < _MAX_NAMES:
                self.attachment_names.append(content.filename)
        elif content.content_type in ("text/plain", "text/html"):
            html = content.content_type == "text/html"
            if (self.html if html else self.plain) is None:
                source = TextSource(
                    self.data, start, end, content.transfer_encoding, content.charset, html
                )
                if html:
                    self.html = source
                else:
                    self.plain = source

    def _multipart(self, content: Content, start: int, end: int, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.defects.append(f"multiparts nested deeper than {MAX_DEPTH} levels not read")
            return
        boundary = content.boundary
        if not boundary:
            self.defects.append(f"{content.content_type} without a boundary parameter")
            return
        child_type = (
            "message/rfc822" if content.content_type == "multipart/digest" else "text/plain"
        )
        for part_start, part_end in self._part_ranges(boundary, start, end):
            self.parts += 1
            if self.parts > MAX_PARTS:
                self.defects.append(f"parts beyond the first {MAX_PARTS} not read")
                return
            bounds = bounded_header(self.data, part_start, part_end, MAX_PART_HEADER)
            if bounds is None:
                self.defects.append(f"a part header longer than {MAX_PART_HEADER} octets not read")
                continue
            header_end, body_start = bounds
            fields = read_fields(self.data[part_start:header_end], _MAX_PART_FIELDS)
            child = content_of(fields, child_type, self.defects)
            self.entity(child, body_start, part_end, depth + 1)

    def _part_ranges(self, boundary: str, start: int, end: int) -> list[tuple[int, int]]:
        """Where each part of a multipart body is, by its boundary lines (RFC 2046 5.1.1)."""
        data = self.data
        delimiters = _Delimiters(data, boundary.encode("utf-8", "replace"), start, end)
        ranges: list[tuple[int, int]] = []
        part_start: int | None = None
        pos = start
        while (found := delimiters.next(pos)) is not None:
            if len(ranges) > MAX_PARTS:
                return ranges  # the caller notes the defect
            line_start, line_end, close = found
            if part_start is not None:
                ranges.append((part_start, _before_line_break(data, part_start, line_start)))
            if close:
                return ranges
            part_start = pos = line_end
        if part_start is None:
            self.defects.append("multipart body without any boundary line")
        else:
            self.defects.append("multipart boundary never closed")
            ranges.append((part_start, end))
        return ranges
