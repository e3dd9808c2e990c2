"""Sender authentication: who really sent a message, by whose verdict.

The relay never believes a ``From:`` field on its own word: anyone can write
any address there. A message's author is *authenticated* when a domain that
vouches for it — by DMARC, or by a DKIM signature or an SPF pass aligned with
the ``From:`` domain — passes, by the verdict of an :class:`Authenticator`:

- :class:`AuthenticationResults` trusts the ``Authentication-Results`` field
  (RFC 8601) that the receiving MTA (Postfix with OpenDMARC/OpenDKIM, rspamd…)
  added under its own ``authserv-id``. Only the topmost field of that id
  counts: fields of that id further down were written by someone else (the
  sender) and are ignored. Needs the ``auth`` extra (``authres``).
- :class:`DKIM` verifies DKIM signatures in process with ``dkimpy`` (the
  ``auth`` extra); the DNS lookup is injectable, so tests run offline.
- :class:`Unauthenticated` vouches for nobody: the relay's default, so that a
  relay set up without thought is safe rather than open.

Alignment (whether the vouching domain may speak for the ``From:`` domain) is
decided here without a public suffix list: the vouching domain must be the
``From:`` domain itself or a parent of it (``d=example.com`` vouches for
``news.example.com``, never the other way round). That is stricter than
DMARC's relaxed mode in one direction and never looser, so it needs no list
of registrable domains to be safe. A DMARC pass whose ``header.from`` is the
``From:`` domain is taken as it is: the MTA did that work.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from attrs import frozen

from .errors import ConfigurationError, MissingExtra
from .mail import HeaderField, get_all, strip_comments, wire_key

__all__ = [
    "DKIM",
    "Authentication",
    "AuthenticationResults",
    "Authenticator",
    "Unauthenticated",
    "Verdict",
    "aligned",
]


class Verdict(enum.StrEnum):
    """The outcome of authenticating a message's author."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    """A domain aligned with the ``From:`` domain vouched for the message."""
    FAIL = "fail"
    """Authentication was attempted and failed (a forgery, or a broken signature)."""
    NONE = "none"
    """Nothing vouched for the message (no verdict, no signature, no trusted field)."""


@frozen
class Authentication:
    """The authenticator's verdict on one message.

    Attributes:
        verdict: pass, fail or none.
        domain: for a pass, the domain that vouched (the DKIM ``d=``, the SPF
            domain, or the DMARC ``header.from``); ``None`` otherwise.
        method: how: ``"dmarc"``, ``"dkim"``, ``"spf"``, or ``"none"``.
    """

    verdict: Verdict
    domain: str | None = None
    method: str = "none"

    @property
    def passed(self) -> bool:
        """Whether the author is authenticated."""
        return self.verdict is Verdict.PASS

    def vouches_for(self, domain: str) -> bool:
        """Whether this verdict covers addresses under ``domain`` (see :func:`aligned`)."""
        return self.passed and self.domain is not None and aligned(self.domain, domain)

    def to_dict(self) -> dict[str, str | None]:
        """The JSON-compatible form recorded on the timeline."""
        return {"verdict": self.verdict.value, "method": self.method, "domain": self.domain}


NOT_AUTHENTICATED = Authentication(Verdict.NONE)


def aligned(vouching: str, author: str) -> bool:
    """Whether ``vouching`` may speak for ``author``: the same domain, or a parent of it.

    >>> aligned("example.com", "news.example.com"), aligned("news.example.com", "example.com")
    (True, False)
    >>> aligned("ample.com", "example.com")
    False
    """
    vouching = vouching.lower().rstrip(".")
    author = author.lower().rstrip(".")
    return bool(vouching) and (author == vouching or author.endswith("." + vouching))


class Authenticator(Protocol):
    """Decides whether a message's ``From:`` domain is authenticated. One method."""

    def authenticate(
        self, fields: Sequence[HeaderField], data: bytes, *, from_domain: str
    ) -> Authentication:
        """The verdict on a message whose (first) ``From:`` address is under ``from_domain``.

        Args:
            fields: the message's header fields, in order, as received.
            data: the whole raw message.
            from_domain: the domain of the author's address, lower case.
        """
        ...


class Unauthenticated:
    """Vouches for nobody: every message is unauthenticated (the relay's default)."""

    def authenticate(
        self, fields: Sequence[HeaderField], data: bytes, *, from_domain: str
    ) -> Authentication:
        """Always :attr:`Verdict.NONE`."""
        del fields, data, from_domain
        return NOT_AUTHENTICATED

    def __repr__(self) -> str:
        return "Unauthenticated()"


def _authres() -> Any:
    try:
        import authres  # type: ignore[import-untyped]  # noqa: PLC0415 - an optional extra, imported when used
    except ImportError as exc:
        raise MissingExtra("auth", "authres", "Reading Authentication-Results") from exc
    return authres


def _dkim() -> Any:
    try:
        import dkim  # type: ignore[import-untyped]  # noqa: PLC0415 - an optional extra, imported when used
    except ImportError as exc:
        raise MissingExtra("auth", "dkim", "Verifying DKIM") from exc
    return dkim


def _domain_of(value: str) -> str:
    """The domain of ``value`` (an address ``a@b``, an identity ``@b`` or a domain), as IDNA.

    Verdicts may name an internationalised domain in either form; the
    relay compares domains in their ASCII (IDNA) form.
    """
    domain = value.rpartition("@")[2].strip().strip(".").lower()
    return wire_key(f"x@{domain}").rpartition("@")[2] if domain else ""


#: One result of an ``Authentication-Results`` field: method, result, and its
#: properties by (ptype, property), all but the values lower case.
_Result = tuple[str, str, dict[tuple[str, str], str]]
#: RFC 8601 keywords (methods, results, ptypes, properties): letters, digits, inner hyphens.
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
#: Property values the fast reader takes: RFC 2045 token characters, and ``@`` of an address.
_VALUE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~@]+")
#: A value with an ``@`` is ``[local-part] @ domain``: anything else goes to ``authres``.
_ADDRESS_VALUE = re.compile(
    r"[A-Za-z0-9!#$%&'*+\-^_`{|}~]*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
)


def _uncommented(value: str) -> str | None:
    """``value`` with its comments removed, or None when they do not balance."""
    value = strip_comments(value, fill=" ")
    return None if "(" in value or ")" in value else value


def _authserv_id(value: str) -> str:
    """The authserv-id of an ``Authentication-Results`` value (lower case), read cheaply."""
    text = _uncommented(value.partition(";")[0]) or ""
    words = text.split()
    return words[0].lower() if words else ""


def _simple_results(value: str) -> list[_Result] | None:
    """The results of a field in the plain form MTAs write, or None to let ``authres`` read it.

    ``authres`` takes up to a millisecond per field; nearly every field an MTA
    writes is ``id; method=result ptype.property=value ...; ...`` with at
    most comments around, which this reads in microseconds. Anything else —
    quoted strings, escapes, blanks around ``=``, a version after the
    method — is left to ``authres``. A property test checks that both agree.
    """
    text = None if '"' in value or "\\" in value else _uncommented(value)
    if text is None:
        return None
    head, *parts = text.split(";")
    ident = head.split()
    if (
        not parts
        or not 1 <= len(ident) <= 2
        or not _VALUE.fullmatch(ident[0])
        or not all(word.isdigit() for word in ident[1:])
    ):
        return None
    if len(parts) == 1 and parts[0].split() in (["none"], ["NONE"], ["None"]):
        return []
    results = [_plain_result(part.split()) for part in parts]
    return None if any(r is None for r in results) else [r for r in results if r is not None]


def _plain_result(words: list[str]) -> _Result | None:
    """``method=result ptype.property=value ...`` as a result, or None if it is not so plain."""
    method, eq, result = words[0].partition("=") if words else ("", "", "")
    if not eq or not _KEYWORD.fullmatch(method) or not _KEYWORD.fullmatch(result):
        return None
    props: dict[tuple[str, str], str] = {}
    for word in words[1:]:
        key, eq, prop_value = word.partition("=")
        ptype, dot, name = key.partition(".")
        if not eq or not _VALUE.fullmatch(prop_value):
            return None
        if "@" in prop_value and not _ADDRESS_VALUE.fullmatch(prop_value):
            return None
        if not dot:
            if key.lower() != "reason" or "@" in prop_value:
                return None
        elif _KEYWORD.fullmatch(ptype) and _KEYWORD.fullmatch(name):
            props[(ptype.lower(), name.lower())] = prop_value
        else:
            return None
    return method.lower(), result.lower(), props


class AuthenticationResults:
    """Trusts the ``Authentication-Results`` field written by the receiving MTA.

    Args:
        authserv_id: the ``authserv-id`` the MTA writes (Postfix with
            OpenDMARC: its ``AuthservID``; rspamd: its configured id). Only
            the topmost field with this id is read; every other field of that
            id was written by someone else and is ignored. The relay removes
            every ``Authentication-Results`` field before delivering.

    The verdict is a pass when the field has ``dmarc=pass`` with
    ``header.from`` equal to the ``From:`` domain, or ``dkim=pass`` (its
    ``header.d``) or ``spf=pass`` (its ``smtp.mailfrom`` domain) aligned with
    it; a fail when it has ``dmarc=fail`` (or only failing DKIM/SPF); none
    otherwise, or when the field cannot be read.
    """

    def __init__(self, authserv_id: str) -> None:
        if not isinstance(authserv_id, str) or not authserv_id.strip():
            raise ConfigurationError(
                "authserv_id must be the MTA's authserv-id, e.g. mx.example.com"
            )
        self.authserv_id = authserv_id.strip().lower()
        self._parse = _authres().AuthenticationResultsHeader.parse
        self._error = _authres().AuthResError

    def __repr__(self) -> str:
        return f"AuthenticationResults(authserv_id={self.authserv_id!r})"

    def _topmost(self, fields: Sequence[HeaderField]) -> list[_Result] | None:
        """The results of the topmost field of our authserv-id; None if none (or unreadable).

        The field is found by its authserv-id alone, before any parsing, so a
        field of ours that cannot be read is never passed over for one further
        down (which the sender may have written).
        """
        for found in get_all(fields, "Authentication-Results"):
            if _authserv_id(found.unfolded) == self.authserv_id:
                return self._results(found.unfolded)
        return None

    def _results(self, value: str) -> list[_Result] | None:
        fast = _simple_results(value)
        if fast is not None:
            return fast
        try:
            header = self._parse(f"Authentication-Results: {value}")
        except (self._error, ValueError, IndexError, RecursionError):
            return None
        return [
            (
                str(result.method).lower(),
                str(result.result).lower(),
                {(p.type.lower(), p.name.lower()): str(p.value) for p in result.properties},
            )
            for result in header.results
        ]

    def authenticate(
        self, fields: Sequence[HeaderField], data: bytes, *, from_domain: str
    ) -> Authentication:
        """Read the verdict of the topmost field of :attr:`authserv_id`."""
        del data
        results = self._topmost(fields)
        if results is None:
            return NOT_AUTHENTICATED
        failed = False
        passes: list[Authentication] = []
        for method, outcome, props in results:
            if method == "dmarc":
                if (
                    outcome == "pass"
                    and _domain_of(props.get(("header", "from"), "")) == from_domain
                ):
                    return Authentication(Verdict.PASS, from_domain, "dmarc")
                failed = failed or outcome == "fail"
                continue
            vouching = {
                "dkim": props.get(("header", "d")) or props.get(("header", "i")),
                "spf": props.get(("smtp", "mailfrom")) or props.get(("smtp", "helo")),
            }.get(method)
            if vouching is None:
                continue
            if outcome == "pass" and aligned(_domain_of(vouching), from_domain):
                passes.append(Authentication(Verdict.PASS, _domain_of(vouching), method))
            elif outcome in {"fail", "permerror"}:
                failed = True
        if passes:  # DKIM before SPF, the widest vouching domain first
            return min(passes, key=lambda a: (a.method != "dkim", len(a.domain or "")))
        return Authentication(Verdict.FAIL) if failed else NOT_AUTHENTICATED


#: A DNS TXT lookup: the record name (bytes, e.g. ``b"sel._domainkey.example.com."``)
#: to the record's text (bytes), or ``None`` when there is none.
DNSLookup = Callable[[bytes], bytes | None]


class DKIM:
    """Verifies DKIM signatures in process (``dkimpy``, the ``auth`` extra).

    Args:
        dns: the TXT lookup for public keys; default: dkimpy's resolver
            (``dnspython``). Tests pass a dict-backed function.
        minkey: the smallest RSA key accepted, in bits.

    The verdict is a pass when a signature verifies whose ``d=`` is aligned
    with the ``From:`` domain (see :func:`aligned`); a fail when signatures
    are present and none of the aligned ones verifies; none when there is no
    aligned signature.
    """

    def __init__(self, *, dns: DNSLookup | None = None, minkey: int = 1024) -> None:
        self._dkim = _dkim()
        self._dns = dns
        self.minkey = minkey

    def __repr__(self) -> str:
        return f"DKIM(minkey={self.minkey})"

    def _lookup(self, name: bytes, timeout: int = 5) -> bytes | None:
        del timeout
        if self._dns is None:  # pragma: no cover - only installed when given
            raise ConfigurationError("no DNS lookup configured")
        return self._dns(name)

    def authenticate(
        self, fields: Sequence[HeaderField], data: bytes, *, from_domain: str
    ) -> Authentication:
        """Verify each DKIM signature aligned with ``from_domain``, widest domain first."""
        signatures = get_all(fields, "DKIM-Signature")
        candidates = []
        for index, found in enumerate(signatures):
            tags = dict(
                part.strip().partition("=")[::2]
                for part in found.unfolded.split(";")
                if "=" in part
            )
            domain = "".join(tags.get("d", "").split()).lower()
            if domain and aligned(domain, from_domain):
                candidates.append((len(domain), index, domain))
        if not candidates:
            return NOT_AUTHENTICATED
        lookup = self._dkim.get_txt if self._dns is None else self._lookup
        verifier = self._dkim.DKIM(data, minkey=self.minkey)
        for _, index, domain in sorted(candidates):
            try:
                if verifier.verify(idx=index, dnsfunc=lookup):
                    return Authentication(Verdict.PASS, domain, "dkim")
            except (self._dkim.DKIMException, ValueError, IndexError, RecursionError):
                continue
        return Authentication(Verdict.FAIL)
