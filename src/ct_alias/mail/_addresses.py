"""Reading address lists from header values and writing header-safe mailboxes."""

from __future__ import annotations

import contextlib
import functools
import re
from email.charset import Charset
from email.utils import getaddresses
from typing import Final

from ..errors import InvalidArgument, MalformedMessage
from ._headers import decode_words, safe_text

__all__ = [
    "addresses",
    "encoded_words",
    "format_address",
    "parse_addresses",
    "wire_key",
]

#: RFC 5321: a path (and so an address) is at most 254 octets long.
_MAX_ADDRESS: Final = 254
#: RFC 5322 ``specials``: a display name holding one must be quoted.
_SPECIALS: Final = frozenset('()<>[]:;@\\,."')
#: A word longer than this is written as encoded words, which fold.
_MAX_WORD: Final = 75
#: UTF-8 octets per encoded word: base64 of 45 octets plus ``=?utf-8?b??=`` is 72.
_WORD_OCTETS: Final = 45
_UTF8: Final = Charset("utf-8")
#: Any whitespace character (str.isspace's set).
_WHITESPACE: Final = re.compile(r"\s")
#: How many recently parsed address fields are kept (a message has a few).
_CACHED_FIELDS: Final = 32
#: RFC 5322 ``atext`` (ASCII only): what the words of a dot-atom and of a plain phrase are made of.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM: Final = rf"{_ATEXT}(?:\.{_ATEXT})*"
#: One entry of a plain address list: ``local@domain`` or ``Plain Words <local@domain>``,
#: both dot-atoms, blanks around. An entry has no comma, quote, comment, group or route,
#: so :func:`email.utils.getaddresses` reads it as these groups say (see ``_plain``).
_PLAIN_ENTRY: Final = re.compile(
    rf"[ \t]*(?:({_DOT_ATOM}@{_DOT_ATOM})"  # a bare address
    rf"|({_ATEXT}(?:[ \t]+{_ATEXT})*)[ \t]*<({_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*"  # words <address>
)
#: How many addresses' read-back checks are kept (the aliases of the conversations in flight).
_CACHED_ADDRESSES: Final = 64


def address_problem(address: object, *, exact: bool = True) -> str | None:
    """Why ``address`` cannot be written as ``<address>`` in a header, or None if it can.

    With ``exact=False`` the costlier last check (that the address reads back
    as itself) is skipped.
    """
    if not isinstance(address, str):
        return f"expected a str, not {type(address).__name__}"
    problem = None
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        problem = "is not of the form local-part@domain"
    elif len(address.encode("utf-8", "surrogatepass")) > _MAX_ADDRESS:
        problem = f"is longer than {_MAX_ADDRESS} octets"
    elif "<" in address or ">" in address:
        problem = "contains an angle bracket"
    elif not address.isprintable() or _WHITESPACE.search(address) is not None:
        problem = "contains whitespace, a line break, NUL or another control character"
    elif exact and not _reads_back(address):
        problem = "does not read back as one address"
    return problem


@functools.lru_cache(maxsize=_CACHED_ADDRESSES)
def _reads_back(address: str) -> bool:
    """Whether ``<address>`` parses back as exactly ``address`` (a pure function, so cached).

    The relay writes the same few addresses into message after message (a
    conversation's aliases); the email package's parser reads them
    character by character, so each is parsed once while it stays in use.
    """
    return getaddresses([f"<{address}>"]) == [("", address)]


def parse_addresses(value: str) -> tuple[list[tuple[str, str]], int]:
    """The mailboxes of an address-list value, and how many of them are unusable.

    Unusable means :func:`format_address` would refuse the address (for
    one of its cheaper reasons). The relay and the timeline both read a
    relayed message's address fields, so recent results are cached: a
    field is parsed once per message, not once per reader.

    Raises:
        MalformedMessage: the value is nested too deeply to parse.
    """
    pairs, unusable = _parsed(value)
    return list(pairs), unusable


@functools.lru_cache(maxsize=_CACHED_FIELDS)
def _parsed(value: str) -> tuple[tuple[tuple[str, str], ...], int]:
    pairs: list[tuple[str, str]] = []
    unusable = 0
    parsed = _plain(value)
    if parsed is None:
        try:
            parsed = getaddresses([safe_text(value)])
        except RecursionError:  # comments nested hundreds deep: the stdlib parser recurses
            raise MalformedMessage("an address field is nested too deeply to read") from None
    for name, address in parsed:
        address = address.strip()  # noqa: PLW2901
        if not address:
            continue  # an empty group, ``<>``, or what the parser could not read at all
        if address_problem(address, exact=False) is not None:
            unusable += 1
        pairs.append((" ".join(safe_text(decode_words(name)).split()), address))
    return tuple(pairs), unusable


def _plain(value: str) -> list[tuple[str, str]] | None:
    """The mailboxes of a plain address list, as :func:`email.utils.getaddresses` reads them.

    A list is plain when every comma-separated entry is a bare dot-atom
    ``local@domain`` or a phrase of plain words before ``<local@domain>``
    (``_PLAIN_ENTRY``): the stdlib parser then reads each entry as its words
    joined by one space and its address as written, and this reads it in one
    regular-expression match per entry (linear: no entry pattern backtracks
    past a blank or a dot) instead of character by character. Anything else
    (quotes, comments, groups, empty entries, non-ASCII, control characters)
    is None: the caller asks the stdlib parser. Most address fields, and the
    long ``Cc`` lists that make parsing cost, are plain.
    """
    pairs: list[tuple[str, str]] = []
    match = _PLAIN_ENTRY.fullmatch
    for entry in value.split(","):
        found = match(entry)
        if found is None:
            return None
        bare, phrase, address = found.groups()
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((" ".join(phrase.split()), address))
    return pairs


def addresses(value: str) -> list[tuple[str, str]]:
    r"""The ``(display name, addr-spec)`` pairs of an address-list header value.

    Parsing is :func:`email.utils.getaddresses`, never failing on a str:
    group names are dropped and their members kept, empty entries (``<>``,
    an empty group) are skipped, and RFC 2047 encoded words in display names
    are decoded after parsing. Names and addresses never contain control
    characters (CR, LF and NUL become spaces before parsing); names have
    their whitespace collapsed.

    The addresses are what the parser read, *not validated*: text that is no
    address at all still yields a (nonsense) entry, so that a caller who
    must act on every sender notices it. Check an address before use —
    :func:`format_address` refuses what it cannot write safely, and
    email-validator tells a deliverable one.

    Pass :attr:`~ct_alias.mail.HeaderField.unfolded` for exact results: in
    :attr:`~ct_alias.mail.HeaderField.value` the encoded words are already
    decoded, and a decoded comma reads as a separator.

    >>> addresses('"Silva, Maria" <maria@example.com>, =?utf-8?q?Jo=C3=A3o?= <joao@example.com>')
    [('Silva, Maria', 'maria@example.com'), ('João', 'joao@example.com')]
    >>> addresses("undisclosed-recipients:;, <>, Ana <ana@example.com>")
    [('Ana', 'ana@example.com')]

    Raises:
        InvalidArgument: ``value`` is not a str.
        MalformedMessage: the value is nested too deeply to parse (hundreds of
            nested comments): no reader agrees on such a value.
    """
    if not isinstance(value, str):
        raise InvalidArgument("value", f"expected a str, not {type(value).__name__}")
    return parse_addresses(value)[0]


def encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 RFC 2047 encoded words of at most 75 characters each.

    Decoders join adjacent encoded words without the whitespace between
    them, so the words may be separated by folding whitespace freely.
    """
    words: list[str] = []
    chunk: list[str] = []
    octets = 0
    for char in text:
        size = len(char.encode("utf-8", "surrogatepass"))
        if chunk and octets + size > _WORD_OCTETS:
            words.append(_UTF8.header_encode("".join(chunk)))
            chunk, octets = [], 0
        chunk.append(char)
        octets += size
    if chunk:
        words.append(_UTF8.header_encode("".join(chunk)))
    return words


def _phrase(name: str) -> str:
    """A display name as an RFC 5322 phrase: plain atoms, a quoted string, or encoded words."""
    if not name.isascii() or "=?" in name or any(len(word) > _MAX_WORD for word in name.split()):
        return " ".join(encoded_words(name))
    if _SPECIALS.intersection(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def format_address(display_name: str, address: str) -> str:
    r"""A header-safe mailbox: ``Name <address>``, or just ``address`` for an empty name.

    The display name is made safe first (control characters such as CR, LF
    and NUL become spaces, whitespace is collapsed). A name with a special
    character (``,`` ``"`` ``@`` ``.`` …) is quoted; a non-ASCII name, one
    that looks like an encoded word, or one with a word too long to fold is
    RFC 2047-encoded. The result never contains CR, LF or NUL, and every
    word of it fits a folded header line.

    >>> format_address("Silva, Maria", "maria@example.com")
    '"Silva, Maria" <maria@example.com>'
    >>> format_address("José\r\nBcc: x@y", "jose@example.com")
    '=?utf-8?b?Sm9zw6kgQmNjOiB4QHk=?= <jose@example.com>'
    >>> format_address("", "maria@example.com")
    'maria@example.com'

    Args:
        display_name: the name to show; may be empty.
        address: the addr-spec. Non-ASCII addresses (RFC 6532) are written
            as they are.

    Raises:
        InvalidArgument: ``address`` is not ``local@domain``, contains
            whitespace, CR, LF, NUL or another control character or an angle
            bracket, is longer than 254 octets, or would not read back as
            itself; or ``display_name`` is not a str.
    """
    problem = address_problem(address)
    if problem is not None:
        raise InvalidArgument("address", problem)
    if not isinstance(display_name, str):
        raise InvalidArgument("display_name", f"expected a str, not {type(display_name).__name__}")
    name = " ".join(safe_text(display_name).split())
    return f"{_phrase(name)} <{address}>" if name else address


def wire_key(address: str) -> str:
    """A comparison form of an address seen on the wire: local part lower-cased, domain in IDNA."""
    local, _, domain = address.rpartition("@")
    domain = domain.lower()
    if not domain.isascii():
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    return f"{local.lower()}@{domain}"
