"""Rewriting a few header fields while every other byte stays as received."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ..errors import InvalidArgument
from ._addresses import encoded_words
from ._headers import CRLF, LF, bytes_argument, field_spans, line_ending

__all__ = ["rewrite_headers"]

#: RFC 5322 2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
_SOFT_LIMIT: Final = 78
_HARD_LIMIT: Final = 998


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name", "a field name must be a non-empty str")
    if not all(33 <= ord(c) <= 126 and c != ":" for c in name):
        raise InvalidArgument("name", f"{name!r} is not printable ASCII without ':'")
    if len(name) + 1 > _HARD_LIMIT:
        raise InvalidArgument("name", "a field name must fit on one line")
    return name


def _check_value(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("value", f"expected a str, not {type(value).__name__}")
    if value.isprintable():
        return value
    if any(c in value for c in "\r\n\0"):
        raise InvalidArgument("value", "contains CR, LF or NUL")
    if any(_is_control(c) for c in value):
        raise InvalidArgument("value", "contains a control character")
    return value


def _is_control(char: str) -> bool:
    """Whether ``char`` may not appear in a written value (a tab may)."""
    code = ord(char)
    return char != "\t" and (code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029))


def _words(value: str) -> list[str]:
    """``value`` cut before each run of spaces that precedes a word: where it may fold.

    ``"".join(_words(value)) == value``; every word but the first starts with
    the spaces before it.
    """
    pieces = value.split(" ")
    words = [pieces[0]]
    spaces = ""
    for piece in pieces[1:]:
        spaces += " "
        if piece:
            if words[-1]:
                words.append(spaces + piece)
            else:
                words[-1] = spaces + piece
            spaces = ""
    words[-1] += spaces
    return words


def _plain(word: str) -> bool:
    """Whether ``word`` is written as it is rather than as encoded words.

    ASCII is (including encoded words made by the caller, such as the
    display names of :func:`format_address`); so is a word with an ``@``:
    an RFC 6532 (UTF-8) address cannot be encoded.
    """
    return word.isascii() or "@" in word


def _encode(value: str) -> list[bytes]:
    """The words of ``value`` as octets: plain ones as they are, the others RFC 2047-encoded.

    Adjacent words to encode are encoded together, so the spaces between
    them survive decoding (decoders drop the spaces between encoded words,
    which is also why each encoded word may start a folded line).
    """
    out: list[bytes] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            text = "".join(run)
            lead = text[: len(text) - len(text.lstrip(" "))]
            for index, word in enumerate(encoded_words(text.lstrip(" "))):
                out.append(((" " if index else lead) + word).encode("ascii"))
            run.clear()

    for word in _words(value):
        if _plain(word):
            flush()
            out.append(word.encode("utf-8"))
        else:
            run.append(word)
    flush()
    return out


def _fold(name: str, value: str, newline: bytes) -> bytes:
    """``name: value`` folded at spaces into lines of at most 78 (never over 998) octets."""
    head = name.encode("ascii") + b":"
    lines: list[bytes] = []
    line = head
    for word in _encode(value.strip(" \t")):
        if not word:
            continue
        piece = word if word.startswith(b" ") else b" " + word
        fits = len(line) + len(piece) <= (_HARD_LIMIT if line == head else _SOFT_LIMIT)
        if fits:
            line += piece
            continue
        lines.append(line)
        line = piece
        if len(line) > _HARD_LIMIT:
            raise InvalidArgument(
                "value", f"a word of the {name} value is too long to fold into a line"
            )
    lines.append(line)
    return newline.join(lines) + newline


def rewrite_headers(
    headers: bytes,
    *,
    replace: Mapping[str, str | None] | None = None,
    add: Sequence[tuple[str, str]] = (),
    newline: bytes | None = None,
) -> bytes:
    r"""A header block with some fields replaced, removed or added; all else byte for byte.

    For each name in ``replace`` (matched case-insensitively) the *first*
    field of that name is replaced where it stands by ``Name: value`` (the
    name spelled as in ``replace``), or removed when the value is ``None``;
    later fields of that name are removed, so duplicates become one. A name
    in ``replace`` that the block does not have is *not* added: use ``add``.
    The ``add`` fields are put at the top, in the order given (trace fields
    such as ``Received`` are prepended by convention). Every other field
    keeps its exact bytes and place, so ``rewrite_headers(block) == block``.

    Written fields are folded at spaces into lines of at most 78 octets where
    the value allows, and never more than 998; they use ``newline``, by
    default the block's own line ending (that of its first line; CRLF for an
    empty block). Non-ASCII words are RFC 2047-encoded, except words holding
    an ``@``, which are written as UTF-8 (RFC 6532 addresses cannot be
    encoded).

    >>> rewrite_headers(
    ...     b"From: a@x\nSubject: Hi\nFrom: b@x\n",
    ...     replace={"From": "Shop <shop@example.com>"},
    ...     add=[("X-Trace", "order-1")],
    ... )
    b'X-Trace: order-1\nFrom: Shop <shop@example.com>\nSubject: Hi\n'

    Args:
        headers: the header block, e.g. :attr:`SplitMessage.headers`.
        replace: field name → new value, or ``None`` to remove every field
            of that name.
        add: ``(name, value)`` fields to prepend.
        newline: ``b"\r\n"`` or ``b"\n"`` for the written fields.

    Returns:
        The new header block.

    Raises:
        InvalidArgument: a name is not RFC 5322 ``ftext`` (printable ASCII
            without ``:``), two ``replace`` names differ only in case, a value
            contains CR, LF, NUL or another control character (callers pass
            clean values: :func:`format_address` makes them), a value has a
            word too long for a 998-octet line, ``newline`` is neither CRLF
            nor LF, or ``headers`` is not bytes.
    """
    block = bytes_argument("headers", headers)
    if newline is None:
        newline = line_ending(block) or CRLF
    elif newline not in (CRLF, LF):
        raise InvalidArgument("newline", "must be b'\\r\\n' or b'\\n'")
    changes: dict[str, tuple[str, str | None]] = {}
    for name, value in (replace or {}).items():
        key = _check_name(name).lower()
        if key in changes:
            raise InvalidArgument("replace", f"{name!r} is given twice")
        changes[key] = (name, None if value is None else _check_value(value))
    written = [_fold(_check_name(name), _check_value(value), newline) for name, value in add]
    out = list(written)
    done: set[str] = set()
    for start, end, field_name in field_spans(block):
        key = field_name.lower()
        if key not in changes:
            out.append(block[start:end])
        elif key not in done:
            done.add(key)
            name, value = changes[key]
            if value is not None:
                out.append(_fold(name, value, newline))
    return b"".join(out)
