"""The first words of a text part, decoding no more of it than they need."""

from __future__ import annotations

import binascii
import codecs
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Final

from attrs import field, frozen

from ._headers import LF, codec_name, safe_text

__all__ = ["TextSource", "first_words", "text_decoder"]

#: Raw octets of a text part read in the first step, in any step, and at most in all.
_FIRST_STEP: Final = 2 * 1024
_MAX_STEP: Final = 16 * 1024
_MAX_READ: Final = 256 * 1024
#: HTML is slower to read (html.parser): its encoded part is read up to this many octets.
_MAX_READ_HTML: Final = 64 * 1024
#: Octets of the base64 alphabet (with padding); anything else is skipped.
_BASE64: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_BASE64: Final = bytes(b for b in range(256) if b not in _BASE64)
#: What a base64 body may hold: the alphabet and line breaks (and stray blanks).
_BASE64_TEXT: Final = _BASE64 + b" \t\r\n"
_BAD_BASE64: Final = "invalid base64 in the text part"
#: Elements whose content is never shown, and elements that do not break words.
_HIDDEN: Final = frozenset({"script", "style", "title", "template"})
_INLINE: Final = frozenset(
    {"a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "em", "font", "i", "kbd", "mark",
     "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u",
     "var", "wbr"}
)  # fmt: skip


@frozen
class TextSource:
    """Where a text part's encoded content is (``data[start:end]``), and how to decode it."""

    data: bytes = field(repr=False)
    start: int
    end: int
    transfer_encoding: str
    charset: str | None
    html: bool


def _decodes(codec: str, octets: bytes, *, last: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(octets, final=last)
    except UnicodeError:
        return False
    return True


def text_decoder(
    charset: str | None, first: bytes, defects: list[str], *, last: bool
) -> codecs.IncrementalDecoder:
    """An incremental decoder for a text part, chosen by its charset and its first octets.

    An unknown charset, or a codec that is not a text encoding, reads as
    UTF-8 (a defect). Text declared in another charset whose first octets are
    8-bit and valid UTF-8 reads as UTF-8 (a defect too): a common mislabel,
    while legacy 8-bit text is hardly ever valid UTF-8 by chance. Whatever
    still cannot be decoded becomes U+FFFD.
    """
    shown = safe_text(charset or "")[:40]
    codec = codec_name(charset)
    if codec is None:
        defects.append(f"unknown charset {shown!r}, read as UTF-8")
        codec = "utf-8"
    elif codec != "utf-8" and not first.isascii() and _decodes("utf-8", first, last=last):
        defects.append(f"text declared as {shown!r} is UTF-8")
        codec = "utf-8"
    elif not _decodes(codec, first, last=last):
        defects.append(f"text not valid in its charset {shown!r}")
    return codecs.getincrementaldecoder(codec)(errors="replace")


def _raw_chunks(source: TextSource) -> Iterator[tuple[bytes, bool]]:
    """The part's encoded content in growing steps, with whether each is the last."""
    stop = min(source.end, source.start + (_MAX_READ_HTML if source.html else _MAX_READ))
    pos = source.start
    step = _FIRST_STEP
    while pos < stop:
        nxt = min(pos + step, stop)
        yield source.data[pos:nxt], nxt >= source.end
        pos = nxt
        step = min(2 * step, _MAX_STEP)


def _base64(source: TextSource, defects: list[str]) -> Iterator[tuple[bytes, bool]]:
    """Decoded base64 in steps: each step decodes whole 4-character groups only."""
    carry = b""
    for chunk, last in _raw_chunks(source):
        if chunk.translate(None, _BASE64_TEXT) and _BAD_BASE64 not in defects:
            defects.append(_BAD_BASE64)
        encoded = carry + chunk.translate(None, _NOT_BASE64)
        cut = len(encoded) - len(encoded) % 4
        encoded, carry = encoded[:cut], encoded[cut:]
        if last and len(carry) > 1:
            encoded, carry = encoded + carry + b"=" * (4 - len(carry)), b""
        try:
            decoded = binascii.a2b_base64(encoded)
        except binascii.Error:
            if _BAD_BASE64 not in defects:
                defects.append(_BAD_BASE64)
            bare = encoded.replace(b"=", b"")
            decoded = binascii.a2b_base64(bare[: len(bare) - len(bare) % 4])
        yield decoded, last


def _quoted_printable(source: TextSource) -> Iterator[tuple[bytes, bool]]:
    """Decoded quoted-printable in steps: each decoded slice ends on a whole line."""
    carry = b""
    for chunk, last in _raw_chunks(source):
        encoded = carry + chunk
        cut = len(encoded) if last else encoded.rfind(LF) + 1
        if cut == 0:  # one long line so far: keep back a possibly split "=XX" escape
            cut = len(encoded) - 2 if b"=" in encoded[-2:] else len(encoded)
        encoded, carry = encoded[:cut], encoded[cut:]
        yield binascii.a2b_qp(encoded), last


def _decoded(source: TextSource, defects: list[str]) -> Iterator[str]:
    """The part's text in bounded steps, transfer encoding and charset undone."""
    encoding = source.transfer_encoding
    if encoding == "base64":
        octets = _base64(source, defects)
    elif encoding == "quoted-printable":
        octets = _quoted_printable(source)
    else:
        if encoding not in ("7bit", "8bit", "binary"):
            defects.append(f"unknown transfer encoding {safe_text(encoding)[:40]!r}, read as is")
        octets = _raw_chunks(source)
    decoder: codecs.IncrementalDecoder | None = None
    for chunk, last in octets:
        if decoder is None:
            decoder = text_decoder(source.charset, chunk, defects, last=last)
        try:
            yield decoder.decode(chunk, final=last)
        except UnicodeError:  # a codec that fails even with errors="replace" (idna, punycode…)
            defects.append(f"text undecodable as {safe_text(source.charset or '')[:40]!r}")
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            yield decoder.decode(chunk, final=last)


class _Words:
    """Collects text with whitespace collapsed until it has more than ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.text = ""

    @property
    def full(self) -> bool:
        return len(self.text) > self.limit

    def add(self, text: str) -> None:
        if self.full or not text:
            return
        self.text += text
        if len(self.text) > self.limit:
            collapsed = " ".join(safe_text(self.text).split())
            self.text = collapsed + " " if self.text[-1:].isspace() else collapsed

    def result(self) -> str:
        text = " ".join(safe_text(self.text).split())
        if len(text) <= self.limit:
            return text
        cut = text.rfind(" ", 0, self.limit + 1)
        return text[:cut] if cut > 0 else text[: self.limit]


class _HTMLText(HTMLParser):
    """Feeds the visible text of HTML to a :class:`_Words`: no tags, scripts, styles, comments."""

    def __init__(self, words: _Words) -> None:
        super().__init__(convert_charrefs=True)
        self.words = words
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag not in _INLINE:
            self.words.add(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag not in _INLINE:
            self.words.add(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.words.add(data)


def first_words(source: TextSource, limit: int, defects: list[str]) -> str:
    """The first ``limit`` characters or fewer of a text part, cut at a word boundary.

    Whitespace is collapsed; HTML is reduced to its visible text. At most
    256 KiB of the encoded part are read (64 KiB of HTML), in steps of
    2 KiB growing to 16 KiB, and reading stops as soon as there are enough
    words.
    """
    words = _Words(limit)
    if limit <= 0:
        return ""
    parser = _HTMLText(words) if source.html else None
    try:
        for text in _decoded(source, defects):
            if parser is None:
                words.add(text)
            else:
                parser.feed(text)
            if words.full:
                break
        if parser is not None:
            parser.close()
    except AssertionError:
        # html.parser raises AssertionError on some malformed declarations
        # (e.g. "<![x"); what was read so far is kept.
        defects.append("malformed HTML in the text part")
    return words.result()
