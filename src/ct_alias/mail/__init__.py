r"""E-mail messages as bytes: split, read and rewrite header fields, summarise.

Sans-IO and byte-exact, for two consumers:

- the relay rewrites a few header fields and must deliver everything else,
  above all the body, byte for byte: :func:`split_message` cuts a message
  into header block, separator and body (``join`` puts it back exactly),
  :func:`parse_headers` reads the fields while keeping their raw bytes, and
  :func:`rewrite_headers` replaces, removes or adds fields and copies the
  rest; :func:`addresses` and :func:`format_address` read and write
  mailboxes safely;
- the timeline records a :class:`MessageSummary` of every message, made by
  :func:`summarize`, which parses only header blocks and decodes only the
  first words of the text, so its cost hardly grows with attachments.

Nothing here fails on malformed bytes: what cannot be read is skipped,
replaced, or noted as a defect. Only the stdlib :mod:`email` package is used.

>>> parts = split_message(b"From: a@example.com\r\nTo: b@example.com\r\n\r\nHi\r\n")
>>> new = rewrite_headers(parts.headers, replace={"From": format_address("Loja", "x@ct.example")})
>>> parts.join(new)
b'From: Loja <x@ct.example>\r\nTo: b@example.com\r\n\r\nHi\r\n'
"""

from __future__ import annotations

from ._addresses import addresses, format_address, wire_key
from ._allowlist import (
    ADDRESS_FIELDS,
    ID_FIELDS,
    KEPT_FIELDS,
    PASSED_FIELDS,
    TEXT_FIELDS,
    address_candidates,
    has_bare_cr,
    strip_comments,
)
from ._headers import HeaderField, SplitMessage, get_all, get_first, parse_headers, split_message
from ._mime import MAX_DEPTH, MAX_PARTS
from ._reports import Report, is_report, read_report
from ._rewrite import rewrite_headers
from ._summary import MAX_HEADER, MessageSummary, message_ids, summarize

__all__ = [
    "ADDRESS_FIELDS",
    "ID_FIELDS",
    "KEPT_FIELDS",
    "MAX_DEPTH",
    "MAX_HEADER",
    "MAX_PARTS",
    "PASSED_FIELDS",
    "TEXT_FIELDS",
    "HeaderField",
    "MessageSummary",
    "Report",
    "SplitMessage",
    "address_candidates",
    "addresses",
    "format_address",
    "get_all",
    "get_first",
    "has_bare_cr",
    "is_report",
    "message_ids",
    "parse_headers",
    "read_report",
    "rewrite_headers",
    "split_message",
    "strip_comments",
    "summarize",
    "wire_key",
]
