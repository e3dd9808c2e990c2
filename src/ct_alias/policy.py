"""Per-store settings: which strategy, which alias domain, how long aliases live."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from attrs import field, frozen

from .addresses import normalize_address, normalize_domain
from .codec import COMPLEX_V1
from .errors import ConfigurationError, InvalidAddress
from .vocabulary import MAX_ADDRESS, MAX_DURATION, MAX_EVENT, OrderEvent

__all__ = [
    "DEFAULT_BOUNCE_LIMIT",
    "DEFAULT_BOUNCE_WINDOW",
    "DEFAULT_MAX_CONTACTS",
    "DEFAULT_TTL",
    "MAX_PER_HOUR",
    "POLICY_FORMAT",
    "Fallback",
    "Policy",
    "UnauthenticatedMail",
    "Window",
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
_WINDOWS = ("to_customer_window", "from_customer_window")
#: The highest rate cap (messages per hour per conversation and direction).
MAX_PER_HOUR = 10_000
_TOKEN_FIELD = "{token}"  # noqa: S105 - the URL template's placeholder


def _window_event(value: object) -> str:
    return _event_name("a window", value)


def _event_name(what: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_EVENT
        or not value.isprintable()
        or value != value.strip()
    ):
        raise ConfigurationError(f"{what} needs an event name, not {value!r}")
    return OrderEvent(value) if value in OrderEvent._value2member_map_ else value


@frozen
class Window:
    """How long after an order event one side may still *start* messages to the other.

    A message that is not a reply to one of the other side's messages is
    refused once ``within`` has passed since the latest ``after`` event of
    the conversation; before that event (and with no such event) the window
    is open. Replies stay allowed as long as the alias works.

    Attributes:
        after: the order event (an :class:`~ct_alias.vocabulary.OrderEvent`
            or a host-defined name) the window is counted from.
        within: how long after it messages may still be started.

    Example:
        >>> Window("delivered", timedelta(days=30)).to_data()
        {'after': 'delivered', 'within': 2592000}
    """

    after: str = field(converter=_window_event)
    within: timedelta = field()

    @within.validator
    def _check_within(self, attribute: object, value: object) -> None:
        del attribute
        if not isinstance(value, timedelta) or not timedelta(0) < value <= MAX_DURATION:
            raise ConfigurationError(
                f"a window must be a timedelta between 0 and {MAX_DURATION.days} days"
            )

    def to_data(self) -> dict[str, Any]:
        """The window as JSON: the event name and whole seconds."""
        return {"after": str(self.after), "within": int(self.within.total_seconds())}

    @classmethod
    def from_data(cls, data: object) -> Window:
        """The window :meth:`to_data` described.

        Raises:
            ConfigurationError: not such an object.
        """
        if not isinstance(data, Mapping) or set(data) != {"after", "within"}:
            raise ConfigurationError("a window is an object with 'after' and 'within'")
        seconds = data["within"]
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ConfigurationError("a window's within must be whole seconds")
        return cls(data["after"], timedelta(seconds=seconds))


def _to_window(value: object) -> Window | None:
    if value is None or isinstance(value, Window):
        return value
    raise ConfigurationError(f"a window must be a Window or None, not {value!r}")


def _check_per_hour(instance: Policy, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_HOUR:
        raise ConfigurationError(
            f"{attribute.name} must be None or an int between 1 and {MAX_PER_HOUR}"
        )


def _to_support(value: object) -> str | None:
    if value is None:
        return None
    try:
        return normalize_address(value).address
    except InvalidAddress as exc:
        raise ConfigurationError(f"support_address is not an e-mail address: {exc}") from None


def _check_unsubscribe_url(instance: Policy, attribute: object, value: str | None) -> None:
    del instance, attribute
    if value is None:
        return
    if (
        not isinstance(value, str)
        or not value.startswith("https://")
        or value.count(_TOKEN_FIELD) != 1
        or len(value) > 2000
        or not value.isprintable()
        or any(c.isspace() or c in '<>"' for c in value)
    ):
        raise ConfigurationError(
            "unsubscribe_url must be an https:// URL template with one {token}, "
            "e.g. 'https://shop.example/unsubscribe/{token}'"
        )


def _check_flag(instance: Policy, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name} must be true or false")


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
        conversation_rules: whether the relay enforces what the host sets per
            conversation: its state (``Tracker.set_state``) and blocked
            senders (``Tracker.block``). Off by default, so that a store
            without rules costs the relay nothing; those methods refuse a
            store that has it off.
        support_address: the store's support address: while a conversation
            is ``on_hold``, only mail to and from it is relayed (none, when
            unset). Mask it in the conversation with the ``store`` role.
        to_customer_window: a :class:`Window`: how long after which order
            event messages to the customer may still be *started* (replies
            to the customer's own messages stay allowed). None: no window.
        from_customer_window: the same for the customer's messages (none by
            default: the customer may always write).
        to_customer_per_hour: at most this many messages to the customer per
            conversation within any hour (``450 4.7.1`` beyond); None: no cap.
        from_customer_per_hour: the same for the customer's messages.
        unsubscribe_url: an ``https://`` URL template with one ``{token}``
            pointing at the host's own endpoint: non-critical notifications
            then offer it for one-click opt-out (RFC 8058) beside the mailto
            address. None: the mailto address only.

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
    conversation_rules: bool = field(default=False, validator=_check_flag)
    support_address: str | None = field(default=None, converter=_to_support)
    to_customer_window: Window | None = field(default=None, converter=_to_window)
    from_customer_window: Window | None = field(default=None, converter=_to_window)
    to_customer_per_hour: int | None = field(default=None, validator=_check_per_hour)
    from_customer_per_hour: int | None = field(default=None, validator=_check_per_hour)
    unsubscribe_url: str | None = field(default=None, validator=_check_unsubscribe_url)

    @property
    def relay_rules(self) -> bool:
        """Whether the relay checks conversation rules for this store at all.

        False when the policy sets no rule: the relay then reads nothing for them.
        """
        return (
            self.conversation_rules
            or self.to_customer_window is not None
            or self.from_customer_window is not None
            or self.to_customer_per_hour is not None
            or self.from_customer_per_hour is not None
        )

    def to_data(self) -> dict[str, Any]:
        """This policy as a JSON object, as storage keeps it.

        Every field by name: durations in whole seconds (``ttl``, ``grace``,
        ``bounce_window``), ``end_on`` a sorted list of event names, enums by
        value, and ``"format"``: :data:`POLICY_FORMAT`. The conversation
        rules' fields (``conversation_rules`` … ``unsubscribe_url``) are
        there only when set (windows as :meth:`Window.to_data`), so a policy
        without rules is stored exactly as before they existed.

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
        } | self._rules_data()

    def _rules_data(self) -> dict[str, Any]:
        """The conversation rules' fields that are set (a policy without rules reads as before)."""
        data: dict[str, Any] = {
            "conversation_rules": self.conversation_rules or None,
            "support_address": self.support_address,
            "to_customer_window": _window_data(self.to_customer_window),
            "from_customer_window": _window_data(self.from_customer_window),
            "to_customer_per_hour": self.to_customer_per_hour,
            "from_customer_per_hour": self.from_customer_per_hour,
            "unsubscribe_url": self.unsubscribe_url,
        }
        return {name: value for name, value in data.items() if value is not None}

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
        for name in _WINDOWS:
            if fields.get(name) is not None:
                fields[name] = Window.from_data(fields[name])
        if "end_on" in fields and not isinstance(fields["end_on"], list):
            raise ConfigurationError("a stored policy's end_on must be a list")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ConfigurationError(f"a stored policy is malformed: {exc}") from None


def _window_data(window: Window | None) -> dict[str, Any] | None:
    return None if window is None else window.to_data()
