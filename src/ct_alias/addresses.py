"""Real addresses: validation and normalisation with email-validator.

A real address is validated once, on the way in, and kept in two forms:
:attr:`RealAddress.address` is what mail is delivered to (the local part as
the caller gave it, the domain lower-cased and IDNA-encoded), and
:attr:`RealAddress.key` is what the tracker compares (the same, with the
local part lower-cased), so ``Maria@Example.com`` and ``maria@example.com``
are one participant.
"""

from __future__ import annotations

from attrs import frozen
from email_validator import EmailNotValidError, validate_email
from email_validator.syntax import validate_email_domain_name

from .errors import ConfigurationError, InvalidAddress

__all__ = ["RealAddress", "normalize_address", "normalize_domain"]

# An address longer than this is refused before any parsing work: RFC 5321
# allows 254 octets, and an IDN domain may be up to ~4 times longer as
# Unicode text than its IDNA form.
_MAX_INPUT = 1024


@frozen
class RealAddress:
    """A validated, normalised real e-mail address.

    Attributes:
        local: the local part as given (NFC-normalised, quotes kept if needed).
        domain: the domain, lower-cased and IDNA (ASCII) encoded.
        smtputf8: whether the local part needs SMTPUTF8 (non-ASCII).
        quoted: whether the local part is a quoted string.
    """

    local: str
    domain: str
    smtputf8: bool = False
    quoted: bool = False

    @property
    def address(self) -> str:
        """The address mail is delivered to: ``local@ascii-domain``."""
        return f"{self.local}@{self.domain}"

    @property
    def key(self) -> str:
        """The comparison form: local part lower-cased, domain as normalised.

        ``str.lower``, not ``casefold``: case-folding would merge mailboxes that
        differ beyond case (``ﬁnance`` and ``finance``, ``straße`` and ``strasse``).
        """
        return f"{self.local.lower()}@{self.domain}"

    def __repr__(self) -> str:
        # Even the repr of a real address stays out of logs and tracebacks.
        return f"RealAddress(<hidden>@{self.domain})"


def normalize_address(value: object, *, allow_domain_literal: bool = False) -> RealAddress:
    """Validate ``value`` as an e-mail address and return its normalised form.

    Args:
        value: the address text, without display name or angle brackets.
        allow_domain_literal: accept ``user@[192.0.2.1]`` style domains.

    Raises:
        InvalidAddress: ``value`` is not a string, or not a valid address;
            ``reason`` carries email-validator's explanation.
    """
    if not isinstance(value, str):
        raise InvalidAddress(value, f"expected a str, not {type(value).__name__}")
    if not value:
        raise InvalidAddress(value, "the address is empty")
    if len(value) > _MAX_INPUT:
        raise InvalidAddress(value, f"the address is longer than {_MAX_INPUT} characters")
    try:
        valid = validate_email(
            value,
            check_deliverability=False,
            allow_quoted_local=True,
            allow_domain_literal=allow_domain_literal,
            allow_display_name=False,
            allow_smtputf8=True,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(value, str(exc)) from None
    local = valid.local_part
    return RealAddress(
        local=local,
        domain=valid.ascii_domain,
        smtputf8=not local.isascii(),
        quoted=local.startswith('"'),
    )


def normalize_domain(value: object) -> str:
    """Validate an alias domain (such as ``ct.example.com``) and return its ASCII form.

    Raises:
        ConfigurationError: ``value`` is not a usable domain name.
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"an alias domain must be a non-empty str, not {value!r}")
    try:
        result = validate_email_domain_name(
            value, test_environment=True, globally_deliverable=False
        )
    except EmailNotValidError as exc:
        raise ConfigurationError(f"invalid alias domain {value!r}: {exc}") from None
    ascii_domain: str = result["ascii_domain"]
    return ascii_domain.lower()
