"""Per-store settings: which strategy, which alias domain, how long aliases live."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from attrs import field, frozen

from .addresses import normalize_domain
from .codec import COMPLEX_V1
from .errors import ConfigurationError
from .vocabulary import MAX_ADDRESS, MAX_DURATION, OrderEvent

__all__ = [
    "DEFAULT_BOUNCE_LIMIT",
    "DEFAULT_BOUNCE_WINDOW",
    "DEFAULT_MAX_CONTACTS",
    "DEFAULT_TTL",
    "POLICY_FORMAT",
    "Fallback",
    "Policy",
    "UnauthenticatedMail",
]

#: The seed's "valid for 2 months".
DEFAULT_TTL = timedelta(days=60)
#: How many hard bounces within :data:`DEFAULT_BOUNCE_WINDOW` end an alias by default.
DEFAULT_BOUNCE_LIMIT = 3
DEFAULT_BOUNCE_WINDOW = timedelta(days=30)
_MAX_BOUNCE_LIMIT = 1000
#: How many outside senders (contacts) one conversation may have by default.
DEFAULT_MAX_CONTACTS = 20
_MAX_CONTACTS = 10_000
#: The version of :meth:`Policy.to_data`'s format (its ``"format"`` field).
POLICY_FORMAT = 1
_DURATIONS = ("ttl", "grace", "bounce_window")


class Fallback(enum.StrEnum):
    """What to do with an address the policy's strategy cannot represent."""

    COMPLEX = "complex"
    """Issue a complex alias instead (the default)."""
    ERROR = "error"
    """Raise :class:`~ct_alias.errors.UnrepresentableAddress`."""


class UnauthenticatedMail(enum.StrEnum):
    """What the relay does with mail whose sender it cannot authenticate."""

    DELIVER = "deliver"
    """Deliver it, its sender shown under an address that accepts no mail (the default)."""
    REFUSE = "refuse"
    """Refuse it with ``550 5.7.1``."""


def _to_unauthenticated(value: object) -> UnauthenticatedMail:
    if isinstance(value, str) and value in UnauthenticatedMail._value2member_map_:
        return UnauthenticatedMail(value)
    choices = ", ".join(repr(f.value) for f in UnauthenticatedMail)
    raise ConfigurationError(f"unauthenticated must be one of {choices}, not {value!r}")


def _check_bounce_limit(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_BOUNCE_LIMIT:
        raise ConfigurationError(f"bounce_limit must be an int between 0 and {_MAX_BOUNCE_LIMIT}")


def _check_bounce_window(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if not isinstance(value, timedelta) or not timedelta(0) < value <= MAX_DURATION:
        raise ConfigurationError(
            f"bounce_window must be a timedelta between 0 and {MAX_DURATION.days} days"
        )


def _check_max_contacts(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_CONTACTS:
        raise ConfigurationError(f"max_contacts must be an int between 0 and {_MAX_CONTACTS}")


def _to_fallback(value: object) -> Fallback:
    if isinstance(value, str) and value in Fallback._value2member_map_:
        return Fallback(value)
    choices = ", ".join(repr(f.value) for f in Fallback)
    raise ConfigurationError(f"on_unrepresentable must be one of {choices}, not {value!r}")


def _alias_domain(value: object) -> str:
    domain = normalize_domain(value)
    # A complex alias is a 40-character token, "@" and the domain: keep it within 254.
    if COMPLEX_V1.length + 1 + len(domain) > MAX_ADDRESS:
        raise ConfigurationError(
            f"alias domain {value!r} is too long for an alias to fit in 254 octets"
        )
    return domain


def _check_ttl(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if not isinstance(value, timedelta) or not timedelta(0) < value <= MAX_DURATION:
        raise ConfigurationError(f"ttl must be a timedelta between 0 and {MAX_DURATION.days} days")


def _to_events(value: object) -> frozenset[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ConfigurationError("end_on must be a set of events, e.g. {OrderEvent.INVOICED}")
    events = set()
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"end_on holds event names, not {item!r}")
        events.add(OrderEvent(item) if item in OrderEvent._value2member_map_ else item)
    return frozenset(events)


def _check_grace(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= MAX_DURATION:
        raise ConfigurationError(
            f"grace must be a timedelta between 0 and {MAX_DURATION.days} days"
        )


def _check_strategy(instance: Policy, attribute: object, value: object) -> None:
    del instance, attribute
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"strategy must be a strategy name, not {value!r}")


@frozen(kw_only=True)
class Policy:
    """How one store's aliases are made.

    Attributes:
        domain: the alias domain (mail to it must reach the relay), e.g. ``ct.example.com``.
        strategy: ``"complex"`` (default), ``"simple"``, or a registered strategy's name.
        ttl: how long an alias works after it is issued (default 60 days).
        on_unrepresentable: ``"complex"`` (default) to fall back to a complex
            alias when the strategy cannot represent an address, or ``"error"``.
        end_on: order events that end the conversation's aliases early, e.g.
            ``{OrderEvent.INVOICED, OrderEvent.CANCELED}``; empty by default, so
            only the time to live applies.
        grace: how long ended aliases keep working after the ending event.
        max_contacts: how many outside senders (contact aliases) one
            conversation may have (default 20); mail that would add one more
            is refused ``550 5.7.1``. ``0`` admits no outside sender.
        unauthenticated: what the relay does with mail whose sender is not
            authenticated (see :mod:`ct_alias.auth`): ``"deliver"`` (default)
            shows the sender under an address that accepts no mail;
            ``"refuse"`` answers ``550 5.7.1``.
        bounce_limit: how many hard bounces (permanent delivery failures,
            reported by the next hop or by a delivery report) within
            ``bounce_window`` revoke an alias, recorded with reason
            ``bounced`` (default 3; ``0`` never).
        bounce_window: the window those bounces are counted in (default 30 days).

    Example:
        >>> Policy(domain="CT.Example.com", strategy="simple").domain
        'ct.example.com'
    """

    domain: str = field(converter=_alias_domain)
    strategy: str = field(default="complex", validator=_check_strategy)
    ttl: timedelta = field(default=DEFAULT_TTL, validator=_check_ttl)
    on_unrepresentable: Fallback = field(default=Fallback.COMPLEX, converter=_to_fallback)
    end_on: frozenset[str] = field(default=frozenset(), converter=_to_events)
    grace: timedelta = field(default=timedelta(0), validator=_check_grace)
    max_contacts: int = field(default=DEFAULT_MAX_CONTACTS, validator=_check_max_contacts)
    unauthenticated: UnauthenticatedMail = field(
        default=UnauthenticatedMail.DELIVER, converter=_to_unauthenticated
    )
    bounce_limit: int = field(default=DEFAULT_BOUNCE_LIMIT, validator=_check_bounce_limit)
    bounce_window: timedelta = field(default=DEFAULT_BOUNCE_WINDOW, validator=_check_bounce_window)

    def to_data(self) -> dict[str, Any]:
        """This policy as a JSON object, as storage keeps it.

        Every field by name: durations in whole seconds (``ttl``, ``grace``,
        ``bounce_window``), ``end_on`` a sorted list of event names, enums by
        value, and ``"format"``: :data:`POLICY_FORMAT`.

        Example:
            >>> Policy(domain="ct.example.com", strategy="simple").to_data()["strategy"]
            'simple'
        """
        return {
            "format": POLICY_FORMAT,
            "domain": self.domain,
            "strategy": self.strategy,
            "ttl": int(self.ttl.total_seconds()),
            "on_unrepresentable": self.on_unrepresentable.value,
            "end_on": sorted(str(event) for event in self.end_on),
            "grace": int(self.grace.total_seconds()),
            "max_contacts": self.max_contacts,
            "unauthenticated": self.unauthenticated.value,
            "bounce_limit": self.bounce_limit,
            "bounce_window": int(self.bounce_window.total_seconds()),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Policy:
        """The policy :meth:`to_data` described; missing fields take their defaults.

        Raises:
            ConfigurationError: not a policy object of a known format, or a
                field out of range.
        """
        if not isinstance(data, Mapping) or data.get("format") != POLICY_FORMAT:
            raise ConfigurationError(
                f"a stored policy must be a JSON object with format {POLICY_FORMAT}"
            )
        fields = {k: v for k, v in data.items() if k != "format"}
        unknown = set(fields) - {a.name for a in attrs.fields(cls)}
        if unknown:
            raise ConfigurationError(f"a stored policy has unknown fields: {sorted(unknown)}")
        for name in _DURATIONS:
            if name in fields:
                seconds = fields[name]
                if isinstance(seconds, bool) or not isinstance(seconds, int):
                    raise ConfigurationError(f"a stored policy's {name} must be whole seconds")
                fields[name] = timedelta(seconds=seconds)
        if "end_on" in fields and not isinstance(fields["end_on"], list):
            raise ConfigurationError("a stored policy's end_on must be a list")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ConfigurationError(f"a stored policy is malformed: {exc}") from None
