"""The words and limits several layers share: order events, roles, RFC and identifier limits.

Everything here is a plain value with no dependency inside the package, so
any layer (policy, strategies, the tracker, storage schemas, the relay) can
use it without reaching up. Each limit is declared once, here; the SQL
schema sizes its columns from the same numbers.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Final

__all__ = [
    "CRITICAL_EVENTS",
    "DEFAULT_STORE",
    "MAX_ADDRESS",
    "MAX_CONVERSATION",
    "MAX_DOMAIN",
    "MAX_DURATION",
    "MAX_EVENT",
    "MAX_LABEL",
    "MAX_LOCAL",
    "MAX_STORE",
    "MYSQL_DIALECTS",
    "ConversationState",
    "ModerationEvent",
    "OrderEvent",
    "Role",
    "RuleEvent",
]


class OrderEvent(enum.StrEnum):
    """The steps of an order's flow."""

    PAYMENT_APPROVED = "payment-approved"
    PREPARING_DELIVERY = "preparing-delivery"
    INVOICED = "invoiced"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    CANCELED = "canceled"


#: The order steps whose messages are critical: they always go, even to a customer who
#: opted out of non-critical messages.
CRITICAL_EVENTS: Final = frozenset(OrderEvent)


class ConversationState(enum.StrEnum):
    """Where a conversation stands, as its host set it (see ``Tracker.set_state``)."""

    OPEN = "open"
    """Mail is relayed (the state of every conversation until the host says otherwise)."""
    ON_HOLD = "on_hold"
    """A dispute or a mediation: only mail to and from the store's support address is relayed."""
    CLOSED = "closed"
    """Nothing is relayed."""


class RuleEvent(enum.StrEnum):
    """What the conversation rules record on the timeline."""

    STATE_CHANGED = "state-changed"
    """The host set the conversation's state (``data``: ``state``, ``reason``)."""
    SENDER_BLOCKED = "sender-blocked"
    """A sender is refused in this conversation (``data``: the participant's ``ref``, ``role``)."""
    SENDER_UNBLOCKED = "sender-unblocked"
    """A blocked sender is relayed again."""
    OPTED_OUT = "opted-out"
    """The customer opted out of non-critical messages (``data``: ``via``)."""
    NOTIFICATION_SUPPRESSED = "notification-suppressed"
    """A non-critical message was not sent: the customer opted out (``data``: ``event``)."""


class Role(enum.StrEnum):
    """Whose address an alias stands for, within a conversation."""

    CUSTOMER = "customer"
    """The buyer."""
    STORE = "store"
    """The store's own sender address, masked like the customer's."""
    FOLLOW_UP = "follow_up"
    """Someone the store copies on the order (a second contact of the buyer, an agent)."""
    CONTACT = "contact"
    """An outside sender (a carrier, a marketplace) given a reverse alias."""


class ModerationEvent(enum.StrEnum):
    """What the relay records of moderation (see :mod:`ct_alias.moderation`).

    A flagged message is delivered and recorded with its flags (under
    ``relay.moderation`` of the message entry); a refused one is this event.
    """

    REFUSED = "message-refused"
    """A moderator refused a message: ``550 5.7.1`` with its reason."""


#: The store name used when a caller does not say which store (single-tenant use).
DEFAULT_STORE: Final = "default"


# -- RFC 5321 limits, in octets ---------------------------------------------------

#: The longest local part (RFC 5321 §4.5.3.1.1).
MAX_LOCAL: Final = 64
#: The longest DNS label (RFC 1035 §2.3.4).
MAX_LABEL: Final = 63
#: The longest domain (RFC 5321 §4.5.3.1.2).
MAX_DOMAIN: Final = 253
#: The longest address that fits a forward path (RFC 5321 §4.5.3.1.3, less the brackets).
MAX_ADDRESS: Final = 254

# -- identifier limits (the SQL columns are this wide) -----------------------------

#: The longest conversation id (an order id), in characters.
MAX_CONVERSATION: Final = 255
#: The longest store (tenant) name, in characters.
MAX_STORE: Final = 64
#: The longest timeline event name, in characters.
MAX_EVENT: Final = 64
#: The longest time to live, grace period or reactivation (ten years).
MAX_DURATION: Final = timedelta(days=3650)

#: SQLAlchemy dialect names of MariaDB/MySQL (shared by the schema and the storage).
MYSQL_DIALECTS: Final = ("mysql", "mariadb")
