"""What a relayed message may carry in its header, and finding addresses in free text.

The relay delivers an *allowlist* of header fields, never a blocklist: a field
nobody thought of (a provider's ``X-Originating-IP``, a new trace field) is
dropped by default. Address fields and message ids are rewritten by the relay;
the fields of :data:`PASSED_FIELDS` pass as they came, and those of
:data:`TEXT_FIELDS` too once :func:`address_candidates` found no real address
in them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from ._addresses import wire_key

__all__ = [
    "ADDRESS_FIELDS",
    "ID_FIELDS",
    "KEPT_FIELDS",
    "PASSED_FIELDS",
    "TEXT_FIELDS",
    "address_candidates",
    "has_bare_cr",
    "strip_comments",
]

#: Address fields the relay rewrites (each mailbox masked, or left out).
ADDRESS_FIELDS: Final = frozenset({"from", "reply-to", "to", "cc"})
#: Message-id fields the relay rewrites (``Message-ID`` replaced, the others mapped).
ID_FIELDS: Final = frozenset({"message-id", "in-reply-to", "references"})
#: Fields delivered as they came: what a mail client needs to show, decode,
#: sort and thread the message, none of which can hold an address.
PASSED_FIELDS: Final = frozenset(
    {
        "date",
        # MIME (RFC 2045, 3282)
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-language",
        # automatic mail must stay recognisable (RFC 3834) and sorted as such
        "auto-submitted",
        "precedence",
        # importance as clients show it
        "importance",
        "priority",
        "x-priority",
        "sensitivity",
        # Outlook's threading token (opaque)
        "thread-index",
    }
)
#: Free-text fields delivered when :func:`address_candidates` finds no real
#: address in them (a subject may quote one).
TEXT_FIELDS: Final = frozenset(
    {
        "subject",
        "comments",
        "keywords",
        "content-description",
        "content-disposition",
        "thread-topic",
    }
)
#: Every field delivered besides the rewritten ones.
KEPT_FIELDS: Final = PASSED_FIELDS | TEXT_FIELDS

#: Comments (the innermost first, so nesting never recurses), quotes and
#: blanks around an ``@``: what an address may hide behind in free text.
_COMMENT: Final = re.compile(r"\([^()]*\)")
_AROUND_AT: Final = re.compile(r"\s*@\s*")
#: An address-like run: the characters an addr-spec is made of, around an ``@``.
#: The look-behind lets a match start only where a run starts: without it, a
#: long run with no ``@`` after it is tried from each of its characters, which
#: is quadratic (a 40 KB subject took seconds). The matches are the same.
_CANDIDATE: Final = re.compile(r"(?<![^\s<>()\[\],;:\"@])[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+")
#: Removing nested comments takes one pass per level; past this, drop them all.
_MAX_PASSES: Final = 16


def address_candidates(text: str) -> set[str]:
    r"""Every address-like spelling in ``text``, in comparison form (see ``wire_key``).

    Free text may spell an address so that a substring search misses it:
    full-width or other compatibility characters (U+FF20 for ``@``), a quoted local
    part (``"maria"@…``), a comment (``maria(me)@…``), blanks or a fold
    around the ``@``. The text is normalised (NFKC, quotes and comments
    removed, blanks around ``@`` closed) and every run of address
    characters around an ``@`` is returned, lower-cased, with an IDNA
    domain. Linear in the length of the text.

    >>> sorted(address_candidates('Re: "Maria"(casa) \uff20 Example.COM e joao@x.org.'))
    ['joao@x.org', 'maria@example.com']
    """
    if "@" not in text and "\uff20" not in text and "\ufe6b" not in text:
        return set()
    text = strip_comments(unicodedata.normalize("NFKC", text), fill="")
    text = text.replace("(", " ").replace(")", " ")  # nested past the passes, or unbalanced
    text = _AROUND_AT.sub("@", text.replace('"', ""))
    found = set()
    for match in _CANDIDATE.finditer(text):
        local, _, domain = match.group().rpartition("@")
        domain = domain.rstrip(".")
        if local and domain:
            found.add(wire_key(f"{local}@{domain}"))
    return found


def strip_comments(text: str, *, fill: str) -> str:
    """``text`` with its RFC 5322 comments replaced by ``fill``, innermost first.

    Linear per pass and never recursive: nesting is removed one level a pass,
    for at most 16 passes. Parentheses that remain (nested deeper, or not
    balanced) are left for the caller to judge.

    >>> strip_comments("a (b (c)) d", fill="")
    'a  d'
    """
    for _ in range(_MAX_PASSES):
        stripped = _COMMENT.sub(fill, text)
        if stripped == text:
            break
        text = stripped
    return text


def has_bare_cr(block: bytes) -> bool:
    r"""Whether ``block`` holds a CR that does not start a CRLF pair.

    Mail clients disagree on what a bare CR means inside a header field (one
    field to the relay can be two to a reader), so such a field is never
    passed on.

    >>> has_bare_cr(b"Subject: a\r\n"), has_bare_cr(b"Subject: a\rBcc: x\r\n")
    (False, True)
    """
    return block.count(b"\r") != block.count(b"\r\n")
