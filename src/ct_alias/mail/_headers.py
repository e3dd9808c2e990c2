"""Splitting raw messages at the header/body separator and reading header fields.

Everything here works on bytes and keeps them: a split joins back to the exact
input, and the fields of a header block concatenate back to the exact block.
Only the *value* of a field is a cleaned-up, display-safe text.
"""

from __future__ import annotations

import codecs
import email.policy
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.header import decode_header
from itertools import pairwise
from typing import Final

from attrs import field, frozen
from attrs.validators import in_, instance_of

from ..errors import InvalidArgument

__all__ = [
    "HeaderField",
    "SplitMessage",
    "get_all",
    "get_first",
    "header_bounds",
    "line_ending",
    "parse_headers",
    "safe_text",
    "split_message",
]

CRLF: Final = b"\r\n"
LF: Final = b"\n"

#: The bytes of a field name (RFC 5322 ``ftext``): printable US-ASCII except ``:``.
_FTEXT: Final = bytes(b for b in range(33, 127) if b != ord(":"))
#: A field name longer than this cannot start a valid line (RFC 5322: 998 octets).
_MAX_NAME: Final = 997

#: Characters never shown in a display value: C0/C1 controls, DEL and Unicode
#: line/paragraph separators become a space; bidirectional embeddings,
#: overrides and isolates (used to disguise names) are removed; lone
#: surrogates become U+FFFD.
_UNSAFE: Final[dict[int, str | None]] = {
    **dict.fromkeys(range(0x20), " "),
    0x7F: " ",
    **dict.fromkeys(range(0x80, 0xA0), " "),
    0x2028: " ",
    0x2029: " ",
    **dict.fromkeys(range(0x202A, 0x202F)),
    **dict.fromkeys(range(0x2066, 0x206A)),
    **dict.fromkeys(range(0xD800, 0xE000), "\ufffd"),
}
#: Charsets read as a superset, as web browsers do (WHATWG Encoding Standard):
#: mailers label text with the old name and write the superset's characters.
#: ASCII reads as UTF-8, which also copes with undeclared 8-bit text.
_SUPERSETS: Final = {
    **dict.fromkeys(("us-ascii", "ascii", "ansi_x3.4-1968", "us", "646", "utf8"), "utf-8"),
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1"), "cp1252"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "euc-cn", "cp936"), "gb18030"),
    **dict.fromkeys(("ks_c_5601-1987", "euc-kr", "korean"), "cp949"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "windows-31j"), "cp932"),
    **dict.fromkeys(("tis-620", "iso-8859-11"), "cp874"),
    "iso-8859-9": "cp1254",
}
#: The field name under which encoded words are decoded (any unstructured name).
_DECODE_AS: Final = "x-ct-alias-text"


def _size(value: bytes) -> str:
    return f"<{len(value)} bytes>"


def bytes_argument(name: str, value: object) -> bytes:
    """``value`` as bytes (bytes-like objects are copied), or :class:`InvalidArgument`."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidArgument(name, f"expected bytes, not {type(value).__name__}")


def line_ending(block: bytes) -> bytes | None:
    """The line ending of the first line of ``block`` (CRLF or LF), or None if it has none."""
    end = block.find(LF)
    if end < 0:
        return None
    return CRLF if end > 0 and block[end - 1] == 0x0D else LF


def safe_text(text: str) -> str:
    """``text`` with control, line-separator and bidi-override characters neutralised, stripped."""
    if not text.isprintable():
        text = text.translate(_UNSAFE)
    return text.strip()


def codec_name(charset: str | None) -> str | None:
    """The Python text codec for a MIME charset name, or None if there is none.

    A missing or ASCII charset is UTF-8, and a few legacy charsets are read
    as the superset mailers really use (GB2312 as GB18030, ISO-8859-1 as
    windows-1252…); an RFC 2231 language suffix (``utf-8*en``) is ignored;
    codecs that are not text encodings (``base64``, ``zlib``…) are refused.
    """
    name = (charset or "utf-8").partition("*")[0].strip().lower()
    name = _SUPERSETS.get(name, name)
    try:
        codecs.lookup(name)
        b"a".decode(name)  # refuses codecs that are not text encodings
    except UnicodeError:  # a text encoding that dislikes the probe (utf-16, idna…)
        return name
    except (LookupError, ValueError):  # unknown, not text, or a NUL in the name
        return None
    return name


def decode_octets(octets: bytes, charset: str | None) -> str:
    """``octets`` decoded as ``charset``, or as UTF-8 when it is unknown; never fails."""
    try:
        return octets.decode(codec_name(charset) or "utf-8", "replace")
    except UnicodeError:  # a codec that fails even with errors="replace" (idna, punycode…)
        return octets.decode("utf-8", "replace")


def _chunk_text(chunk: str | bytes, charset: str | None) -> str:
    """One chunk of :func:`email.header.decode_header` as text."""
    if isinstance(chunk, str):  # the whole value, when it has no encoded word
        return chunk
    if charset is None:  # plain text between encoded words, kept this way by decode_header
        return chunk.decode("raw-unicode-escape")
    return decode_octets(chunk, charset)


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded words decoded; lenient, never fails.

    Adjacent encoded words of one charset are decoded together (as
    :func:`email.header.decode_header` does), so a character split across
    two words by a careless mailer still reads. Unknown charsets read as
    UTF-8, undecodable octets become U+FFFD.
    """
    if "=?" not in text:
        return text
    try:
        return "".join(_chunk_text(chunk, charset) for chunk, charset in decode_header(text))
    except (HeaderParseError, UnicodeDecodeError):
        # invalid base64 in a word, or a stray backslash escape in the plain text:
        # the stricter, word-by-word decoder of the modern email policy copes
        return str(email.policy.default.header_factory(_DECODE_AS, text))


def _field_name(data: bytes, start: int, end: int) -> str | None:
    """The name of the field whose first line is ``data[start:end]``, or None if it is not one.

    A field line is a non-empty run of ``ftext`` bytes, optional blanks
    (obsolete syntax) and a colon. Lines that start with a blank are
    continuations, and an mbox ``From `` line is no field either.
    """
    colon = data.find(b":", start, min(end, start + _MAX_NAME + 1))
    if colon <= start:
        return None
    name = data[start:colon].rstrip(b" \t")
    if not name or name.translate(None, _FTEXT):
        return None
    return name.decode("ascii")


def header_bounds(data: bytes, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Where the header block of ``data[start:end]`` ends and where its body starts.

    Returns ``(header_end, body_start)``; the separating empty line, if any,
    is ``data[header_end:body_start]``. Reading stops at the first empty line
    (LF or CRLF) or at the first line that is neither a field nor a folded
    continuation; when the very first line is not a field, the header block
    is empty and everything is body. Nothing after the header block is read.
    """
    stop = len(data) if end is None else end
    pos = start
    while pos < stop:
        newline = data.find(LF, pos, stop)
        line_end = stop if newline < 0 else newline + 1
        length = line_end - pos
        if (length == 1 and data[pos] == 0x0A) or (
            length == 2 and data[pos] == 0x0D and data[pos + 1] == 0x0A
        ):
            return pos, line_end
        continuation = pos > start and data[pos] in b" \t"
        if not continuation and _field_name(data, pos, line_end) is None:
            return pos, pos
        pos = line_end
    return stop, stop


def bounded_header(data: bytes, start: int, end: int, size: int) -> tuple[int, int] | None:
    """:func:`header_bounds` reading at most ``size`` octets; None if the block is longer.

    The limit is moved back to a line boundary, so that no line is judged
    from a part of it.
    """
    cap = end
    if start + size < end:
        newline = data.rfind(LF, start, start + size)
        cap = newline + 1 if newline >= start else start + size
    header_end, body_start = header_bounds(data, start, cap)
    return None if body_start == cap < end else (header_end, body_start)


@frozen
class SplitMessage:
    r"""A raw message cut in three at the end of its header block, losslessly.

    ``headers + separator + body`` is always the original bytes.

    Attributes:
        headers: the header field lines, each with its own line ending as
            received (CRLF, bare LF, or none for a last line at the very end
            of the data). Empty when the data does not start with a field.
        separator: the empty line that ends the header block: ``b"\r\n"``,
            ``b"\n"``, or ``b""`` when there is none (a message of headers
            only, a header block ended by a line that is not a field, or data
            that does not start with a field at all).
        body: everything after the separator, exactly.
    """

    headers: bytes = field(validator=instance_of(bytes), repr=_size)
    separator: bytes = field(validator=in_((b"", LF, CRLF)))
    body: bytes = field(validator=instance_of(bytes), repr=_size)

    @property
    def newline(self) -> bytes:
        """The message's line ending: that of its first header line, else of its separator.

        CRLF when neither says.
        """
        return line_ending(self.headers) or self.separator or CRLF

    def join(self, headers: bytes | None = None) -> bytes:
        """The message again, optionally with another header block; the body is never changed.

        Args:
            headers: a replacement header block (field lines, no empty line),
                e.g. from :func:`~ct_alias.mail.rewrite_headers`; ``None``
                gives back the original bytes exactly.

        Returns:
            ``headers + separator + body``. With a replacement block, a line
            ending is added to the block if its last line lacks one, and when
            the original had no separator but has a body, an empty line is
            inserted, so that splitting the result again yields this same
            body (a body that starts with a blank or a ``name:`` line would
            otherwise be read as more header).

        Raises:
            InvalidArgument: ``headers`` is not bytes.
        """
        if headers is None:
            return self.headers + self.separator + self.body
        return _joined(bytes_argument("headers", headers), self.separator, self.body, self.newline)


def _joined(block: bytes, separator: bytes, body: bytes | memoryview, newline: bytes) -> bytes:
    """``block + separator + body``, made to split again at the same place (see ``join``)."""
    newline = line_ending(block) or newline
    if block and not block.endswith(LF) and (separator or body):
        block += newline
    if block and not separator and body:
        separator = newline
    return b"".join((block, separator, body))


class SplitView:
    """:func:`split_message` without copying the body: the header block and a view of the rest.

    The relay keeps one per incoming message: the body is only ever copied
    once, into the outgoing message by :meth:`join` (or on demand, by
    :attr:`body`), however large it is.
    """

    __slots__ = ("_body", "_body_start", "data", "headers", "separator")

    def __init__(self, data: bytes) -> None:
        header_end, body_start = header_bounds(data)
        self.data = data
        self.headers = data[:header_end]
        self.separator = data[header_end:body_start]
        self._body_start = body_start
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        """Everything after the separator, exactly (copied on first use)."""
        if self._body is None:
            self._body = self.data[self._body_start :]
        return self._body

    def join(self, headers: bytes) -> bytes:
        """Like :meth:`SplitMessage.join` with a replacement header block; one copy of the body."""
        newline = line_ending(self.headers) or self.separator or CRLF
        body = memoryview(self.data)[self._body_start :]
        return _joined(bytes_argument("headers", headers), self.separator, body, newline)


def split_message(data: bytes) -> SplitMessage:
    r"""Split raw RFC 5322 bytes into header block, separator and body; never fails on bytes.

    The header block is every line from the start that is a header field
    (``name:``) or a folded continuation of one (a line starting with a space
    or tab). It ends at the first empty line (the separator; CRLF and bare LF
    are both line endings, mixed endings are fine) or at the first line that
    is neither (then the separator is empty and that line starts the body).
    Data whose first line is not a field — body-only text, an mbox ``From ``
    line, binary data such as an Outlook ``.msg`` file — has an empty header
    block and is all body. A bare CR is not a line ending. NUL and 8-bit
    bytes are kept as they are.

    >>> parts = split_message(b"Subject: hi\r\n\r\nbody\r\n")
    >>> parts.headers, parts.separator, parts.body
    (b'Subject: hi\r\n', b'\r\n', b'body\r\n')
    >>> split_message(b"From someone Thu Jan  1 00:00:00 2026\nSubject: x\n\n").headers
    b''

    Args:
        data: the raw message.

    Returns:
        A :class:`SplitMessage`; ``split_message(data).join() == data``.

    Raises:
        InvalidArgument: ``data`` is not bytes (bytearray and memoryview are accepted).
    """
    data = bytes_argument("data", data)
    header_end, body_start = header_bounds(data)
    return SplitMessage(data[:header_end], data[header_end:body_start], data[body_start:])


def _unfold(raw: bytes, *, named: bool) -> str:
    """The text of a field: after the colon, line breaks before blanks removed (RFC 5322 2.2.3).

    8-bit bytes are decoded as UTF-8, invalid sequences replaced. A line
    break that is not followed by a blank (only in malformed blocks) becomes
    a space.
    """
    text = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")
    if named:
        text = text.partition(":")[2]
    lines = text.split("\n")
    parts = [lines[0].removesuffix("\r")]
    for line in lines[1:]:
        line = line.removesuffix("\r")  # noqa: PLW2901
        if line:
            parts.append(line if line[0] in " \t" else " " + line)
    return "".join(parts)


@frozen
class HeaderField:
    """One header field, as received, with a display-safe value.

    Attributes:
        name: the field name as written (without blanks before the colon);
            empty only for bytes that precede the first field in a block
            that does not start with one (never in a block from
            :func:`split_message`).
        raw: the whole field exactly as received: its first line, its folded
            continuation lines, and their line endings.
        value: the value unfolded, RFC 2047 encoded words decoded, control
            characters (CR, LF, NUL, …) replaced by spaces and bidi overrides
            removed, stripped: safe to display, never a line break.
        unfolded: the value unfolded and made safe like ``value``, but with
            its encoded words left as they are: the form to parse structure
            from (addresses, parameters, message ids), since a decoded word
            may hold a comma or a bracket that was never syntax.
            :func:`~ct_alias.mail.addresses` decodes display names after
            parsing. Computed from ``raw`` when not given.
    """

    name: str
    raw: bytes = field(repr=False)
    value: str = field(repr=False)
    unfolded: str = field(repr=False)

    @unfolded.default
    def _unfold_raw(self) -> str:
        return safe_text(_unfold(self.raw, named=bool(self.name)))


def _make_field(name: str, raw: bytes) -> HeaderField:
    unfolded = safe_text(_unfold(raw, named=bool(name)))
    value = safe_text(decode_words(unfolded)) if "=?" in unfolded else unfolded
    return HeaderField(name, raw, value, unfolded)


def field_spans(data: bytes, limit: int | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of each field of a header block, at most ``limit`` of them.

    A field is a line that starts with ``name:`` and the lines after it that
    do not; lines before the first field form a field with an empty name.
    Without a limit the spans cover ``data`` exactly.
    """
    starts: list[tuple[int, str]] = []
    pos, size = 0, len(data)
    while pos < size:
        newline = data.find(LF, pos)
        line_end = size if newline < 0 else newline + 1
        name = _field_name(data, pos, line_end)
        if name is not None or not starts:
            if limit is not None and len(starts) == limit:
                return [(a, b, n) for (a, n), (b, _) in pairwise([*starts, (pos, "")])]
            starts.append((pos, name or ""))
        pos = line_end
    return [(a, b, n) for (a, n), (b, _) in pairwise([*starts, (size, "")])]


def parse_headers(headers: bytes) -> list[HeaderField]:
    r"""The fields of a header block, in order, duplicates kept; never fails on bytes.

    Each field is a line that starts with ``name:`` and the lines after it
    that do not; ``b"".join(f.raw for f in parse_headers(block)) == block``
    always holds. 8-bit bytes are read as UTF-8 (invalid sequences replaced)
    for :attr:`HeaderField.value`; ``raw`` keeps them as they were.

    >>> block = b"Subject: =?utf-8?q?Ol=C3=A1?=\r\n mundo\r\n"
    >>> [(f.name, f.value) for f in parse_headers(block)]
    [('Subject', 'Olá mundo')]

    Args:
        headers: a header block, e.g. :attr:`SplitMessage.headers`.

    Raises:
        InvalidArgument: ``headers`` is not bytes.
    """
    data = bytes_argument("headers", headers)
    return read_fields(data)


def read_fields(data: bytes, limit: int | None = None) -> list[HeaderField]:
    """The first ``limit`` fields (all, by default) of a header block, as :class:`HeaderField`."""
    return [_make_field(name, data[start:end]) for start, end, name in field_spans(data, limit)]


def get_all(fields: Iterable[HeaderField], name: str) -> list[HeaderField]:
    r"""The fields called ``name`` (case-insensitively), in order.

    >>> [f.value for f in get_all(parse_headers(b"To: a@x\nCc: c@x\nto: b@x\n"), "TO")]
    ['a@x', 'b@x']
    """
    wanted = name.lower()
    return [f for f in fields if f.name.lower() == wanted]


def get_first(fields: Iterable[HeaderField], name: str) -> HeaderField | None:
    """The first field called ``name`` (case-insensitively), or None."""
    wanted = name.lower()
    return next((f for f in fields if f.name.lower() == wanted), None)
