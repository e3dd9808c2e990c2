"""What a message says, for moderation: every part's type and size, and its text, bounded.

:func:`read_content` walks the MIME structure once (the same boundary walk as
the timeline's summary: part bodies are located, never copied) and returns
each leaf part that is not the message's text as an :class:`Attachment` (type, file
name, size), and the text of the text parts, decoded only up to a bound
(:data:`MAX_TEXT` characters in all), with the link targets of HTML parts.
Nothing in it fails on malformed bytes: what cannot be read is a defect.

:func:`redact_addresses` replaces every address-like spelling in a text by a
placeholder, in time linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from attrs import frozen

from ._headers import HeaderField, safe_text
from ._mime import Content, Structure, content_of
from ._text import _MAX_READ, _MAX_READ_HTML, TextSource, _decoded, _HTMLText, _Words

__all__ = [
    "MAX_LINKS",
    "MAX_TEXT",
    "MAX_TEXT_PARTS",
    "Attachment",
    "MessageContent",
    "read_content",
    "redact_addresses",
]

#: Characters of text read from all text parts together (the rest is not scanned).
MAX_TEXT: Final = 100_000
#: Text parts read at most (later ones count as read, their text is not).
MAX_TEXT_PARTS: Final = 8
#: Link targets of HTML parts kept at most, each cut to 2,000 characters.
MAX_LINKS: Final = 200
_MAX_LINK: Final = 2000
#: Leaf parts described at most (a message of more is a defect, see ``MAX_PARTS``).
_MAX_DESCRIBED: Final = 1000
_TEXT_TYPES: Final = frozenset({"text/plain", "text/html"})
_BASE64_LINE: Final = 78  # 76 characters and CRLF


@frozen
class Attachment:
    """A leaf part of a message that is not its text (an attachment, an inline image…).

    Attributes:
        content_type: the declared type, lower case (``text/plain`` when none).
        filename: the decoded file name, or None.
        size: the size of its content in octets once its transfer encoding is
            undone (estimated from the encoded length: exact for base64 and
            unencoded parts, an upper bound for quoted-printable).
        inline: whether it is marked ``inline`` (or not marked at all).
    """

    content_type: str
    filename: str | None
    size: int
    inline: bool


@frozen
class MessageContent:
    """The readable content of a message (see :func:`read_content`)."""

    texts: tuple[str, ...]
    links: tuple[str, ...]
    parts: tuple[Attachment, ...]
    truncated: bool
    defects: tuple[str, ...]


def _decoded_size(data: bytes, start: int, end: int, encoding: str) -> int:
    if encoding != "base64":
        return end - start
    breaks = data.count(b"\n", start, end) + data.count(b"\r", start, end)
    blanks = data.count(b" ", start, end) + data.count(b"=", start, end)
    return max(0, end - start - breaks - blanks) * 3 // 4


class _Links(_HTMLText):
    """Visible text, plus the targets of links (``href``), of an HTML part."""

    def __init__(self, words: _Words, links: list[str]) -> None:
        super().__init__(words)
        self.links = links

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep an ``href`` (of any element: ``area`` and ``base`` have them too)."""
        super().handle_starttag(tag, attrs)
        for name, value in attrs:
            if name == "href" and value and len(self.links) < MAX_LINKS:
                self.links.append(safe_text(value)[:_MAX_LINK])


class _Walk(Structure):
    """The MIME walk, keeping every leaf instead of the first text parts."""

    def __init__(self, data: bytes, defects: list[str]) -> None:
        super().__init__(data, defects)
        self.leaves: list[tuple[Content, int, int]] = []

    def entity(self, content: Content, start: int, end: int, depth: int = 0) -> None:
        """A multipart is walked; any other entity is kept as a leaf."""
        if content.maintype == "multipart":
            super().entity(content, start, end, depth)
        elif len(self.leaves) < _MAX_DESCRIBED:
            self.leaves.append((content, start, end))


def _text(source: TextSource, budget: int, links: list[str], defects: list[str]) -> str:
    """At most ``budget`` characters of a text part (HTML: its visible text)."""
    words = _Words(budget)
    parser = _Links(words, links) if source.html else None
    try:
        for chunk in _decoded(source, defects):
            if parser is None:
                words.add(chunk)
            else:
                parser.feed(chunk)
            if words.full:
                break
        if parser is not None:
            parser.close()
    except AssertionError:  # html.parser on some malformed declarations
        defects.append("malformed HTML in the text part")
    return words.result()


def read_content(fields: Sequence[HeaderField], body: bytes) -> MessageContent:
    """The parts, text and links of a message whose header fields and body are given.

    Each text part (``text/plain`` or ``text/html`` that is not an
    attachment) is decoded up to the characters left of :data:`MAX_TEXT`,
    and of at most :data:`MAX_TEXT_PARTS` parts; an encoded part is read up
    to 256 KiB (64 KiB of HTML) as for the timeline's first words. Other
    leaf parts are described, never decoded.
    """
    defects: list[str] = []
    walk = _Walk(body, defects)
    walk.entity(content_of(fields, "text/plain", defects), 0, len(body))
    texts: list[str] = []
    links: list[str] = []
    parts: list[Attachment] = []
    left = MAX_TEXT
    truncated = False
    for content, start, end in walk.leaves:
        if content.content_type in _TEXT_TYPES and not content.is_attachment:
            if left <= 0 or len(texts) >= MAX_TEXT_PARTS:
                truncated = True
                continue
            html = content.content_type == "text/html"
            source = TextSource(body, start, end, content.transfer_encoding, content.charset, html)
            text = _text(source, left, links, defects)
            truncated = (
                truncated
                or len(text) >= left
                or end - start > (_MAX_READ_HTML if html else _MAX_READ)
            )
            left -= len(text)
            texts.append(text)
        else:
            parts.append(
                Attachment(
                    content_type=content.content_type,
                    filename=content.filename,
                    size=_decoded_size(body, start, end, content.transfer_encoding),
                    inline=content.disposition != "attachment",
                )
            )
    return MessageContent(
        texts=tuple(texts),
        links=tuple(links),
        parts=tuple(parts),
        truncated=truncated,
        defects=tuple(dict.fromkeys(defects)),
    )


#: An address-like run: up to 64 local-part characters that start a run (the
#: look-behind lets no match start inside one, so each position is tried once),
#: ``@``, and two to nine labels. Linear in the text.
_ADDRESS: Final = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]{1,64}"
    r"\s{0,3}[@\uff20\ufe6b]\s{0,3}"
    r"[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
)


def redact_addresses(text: str, placeholder: Callable[[str], str]) -> tuple[str, int]:
    """``text`` with each address-like spelling replaced by ``placeholder(address)``.

    Returns the new text and how many were replaced. An ``@`` may be
    full-width (U+FF20, U+FE6B) or have blanks around it.

    >>> redact_addresses("write to maria@example.com.", lambda a: "[address]")
    ('write to [address].', 1)
    """
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return placeholder(match.group())

    if "@" not in text and "\uff20" not in text and "\ufe6b" not in text:
        return text, 0
    return _ADDRESS.sub(replace, text), count
