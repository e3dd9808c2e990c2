"""The exception hierarchy of ct_alias.

Every failure a caller can meet is a :class:`CtAliasError`. Each subclass
also derives from the builtin exception a caller would naturally catch
(:class:`ValueError` for bad input, :class:`LookupError` for an alias that
cannot be resolved), and carries the data needed to act on it as attributes,
not only inside its message.

Messages never contain secrets, and never contain a real address: the
address a caller passed in is kept on the exception (``exc.address``) for
the caller's own use, but it is not part of ``str(exc)``, so logging an
exception does not leak it.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

__all__ = [
    "AliasCollision",
    "ConfigurationError",
    "CorruptRecord",
    "CtAliasError",
    "DeliveryError",
    "ExpiredAlias",
    "ExpiryReason",
    "ForgedAlias",
    "InvalidAddress",
    "InvalidArgument",
    "MalformedAlias",
    "MissingExtra",
    "MissingParticipant",
    "ModeratorFailed",
    "PublicIndexKeyWarning",
    "RevokedAlias",
    "StorageError",
    "UnknownAddressKey",
    "UnknownAlias",
    "UnrepresentableAddress",
    "UnsupportedStorage",
]


class CtAliasError(Exception):
    """Root of every exception raised by ct_alias."""


class ConfigurationError(CtAliasError, ValueError):
    """The library was set up wrongly (a bad policy, no keys, an unknown strategy…)."""


class MissingExtra(ConfigurationError, ImportError):
    """An optional dependency is needed but not installed.

    Attributes:
        extra: the name of the ``ct-alias[...]`` extra that provides it.
        package: the import name that could not be imported.
    """

    def __init__(self, extra: str, package: str, purpose: str) -> None:
        self.extra = extra
        self.package = package
        super().__init__(
            f"{purpose} needs the {package!r} package: "
            f"install it with `pip install 'ct-alias[{extra}]'`"
        )


class UnsupportedStorage(ConfigurationError, TypeError):
    """The storage backend lacks an optional protocol that an operation needs.

    Attributes:
        operation: what was asked (``"forget"``…).
        protocol: the protocol the storage would need (``"ErasureStorage"``…).
        storage: the storage's class name.
    """

    def __init__(self, operation: str, protocol: str, storage: object) -> None:
        self.operation = operation
        self.protocol = protocol
        self.storage = type(storage).__name__
        super().__init__(
            f"{operation}() needs a storage that implements ct_alias.storage.{protocol}; "
            f"{self.storage} does not"
        )


class InvalidArgument(CtAliasError, ValueError):
    """An argument is not acceptable: an empty conversation id, an unknown role.

    Attributes:
        name: the argument's name.
        reason: what is wrong with it.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid {name}: {reason}")


class InvalidAddress(CtAliasError, ValueError):
    """A real address given to the library is not a valid e-mail address.

    Attributes:
        address: the value that was given (not included in the message).
        reason: why it was refused, as email-validator or ct_alias explains it.
    """

    def __init__(self, address: object, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"not a valid e-mail address: {reason}")


class UnrepresentableAddress(InvalidAddress):
    """A valid address that the policy's strategy cannot turn into an alias.

    Raised only when the policy says ``on_unrepresentable="error"``; by default
    the tracker falls back to the complex strategy instead.

    Attributes:
        strategy: the name of the strategy that could not represent it.
    """

    def __init__(self, address: object, strategy: str, reason: str) -> None:
        self.strategy = strategy
        super().__init__(address, f"the {strategy!r} strategy cannot represent it: {reason}")


class MalformedAlias(CtAliasError, ValueError):
    """The text is not one of our aliases at all: bad syntax, an unknown domain or format.

    Attributes:
        alias: the text that was given.
        reason: what is wrong with it.
    """

    def __init__(self, alias: object, reason: str) -> None:
        self.alias = alias
        self.reason = reason
        super().__init__(f"not a ct_alias alias ({reason}): {_shown(alias)}")


class ForgedAlias(CtAliasError, ValueError):
    """The alias is well formed but its signature does not verify with any current key.

    Either it was never issued by this tracker, it was altered, or the key
    that signed it has been retired.

    Attributes:
        alias: the text that was given.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        super().__init__(f"alias signature does not verify with any current key: {_shown(alias)}")


class ExpiryReason(enum.StrEnum):
    """Why an alias no longer works."""

    TTL = "ttl"
    """Its time to live ran out."""
    ENDED = "ended"
    """Its conversation ended (an order event) and the grace period is over."""
    REVOKED = "revoked"
    """It was revoked explicitly."""


class ExpiredAlias(CtAliasError, LookupError):
    """The alias was issued by us but can no longer be used.

    Attributes:
        alias: the alias address.
        expired_at: when it stopped working (UTC).
        reason: an :class:`ExpiryReason`.
    """

    def __init__(
        self, alias: str, expired_at: datetime, reason: ExpiryReason = ExpiryReason.TTL
    ) -> None:
        self.alias = alias
        self.expired_at = expired_at
        self.reason = reason
        super().__init__(
            f"alias no longer works ({reason.value}) since {expired_at.isoformat()}: "
            f"{_shown(alias)}"
        )


class RevokedAlias(ExpiredAlias):
    """The alias was revoked; ``expired_at`` is when."""

    def __init__(self, alias: str, expired_at: datetime) -> None:
        super().__init__(alias, expired_at, ExpiryReason.REVOKED)


class UnknownAlias(CtAliasError, LookupError):
    """The alias is well formed and correctly signed, but storage has no record of it.

    Its signature verifies, so it was issued with one of the signing keys:
    either its record is in another storage, or the tracker's index key is
    not the one it was stored with (records are found by a keyed hash, so a
    different index key finds nothing). The message says so.

    Attributes:
        alias: the alias address.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        super().__init__(
            f"alias is not in storage: {_shown(alias)} (its signature verifies: is this the "
            "storage it was stored in, and the index key it was stored with?)"
        )


class MissingParticipant(CtAliasError, LookupError):
    """A conversation has no usable alias for a participant the operation needs.

    Attributes:
        conversation: the conversation.
        role: the role that is missing (``"customer"``, ``"store"``…).
    """

    def __init__(self, conversation: str, role: str) -> None:
        self.conversation = conversation
        self.role = role
        super().__init__(
            f"conversation {conversation!r} has no usable {role} alias yet: mask one first"
        )


class StorageError(CtAliasError, RuntimeError):
    """The storage backend failed; ``__cause__`` (and ``cause``) hold the driver's error.

    The message says what the store was doing and, from the driver's own
    message, why: the host and port, "connection refused", "database ... does
    not exist", "no such table". Addresses, passwords and the credentials of a
    URL are removed from it (see :func:`driver_message`).

    Attributes:
        operation: what the store was doing.
        cause: the underlying exception, if any.
        transient: True when retrying later may succeed (a lost connection,
            a timeout, a deadlock), False for errors that will repeat.
        schema_missing: True when the tables (or the SQLite file) do not
            exist: run the storage's ``upgrade()`` (``ct-alias db upgrade``).
    """

    def __init__(
        self,
        operation: str,
        cause: BaseException | None = None,
        *,
        transient: bool = True,
        schema_missing: bool = False,
        detail: str | None = None,
    ) -> None:
        self.operation = operation
        self.cause = cause
        self.transient = transient
        self.schema_missing = schema_missing
        if detail is None and cause is not None:
            detail = driver_message(cause)
        message = f"storage failed while {operation}" + (f": {detail}" if detail else "")
        if schema_missing:
            message += " (the schema is missing: run `upgrade()`, or `ct-alias db upgrade`)"
        super().__init__(message)


_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)
_PASSWORD = re.compile(
    r"((?:password|passwd|pwd)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE
)
_KEY_VALUE = re.compile(r"(Key \([^)]*\))=\(.*?\)(?= already exists| is not present|$|\s)")
_ADDRESS = re.compile(r"[^\s@<>()\[\]\"',;:=/*]+@[^\s@<>()\[\]\"',;:]+")
_SQL_LINE = re.compile(r" LINE \d+: ")
_MAX_DETAIL = 300


def driver_message(cause: BaseException) -> str:
    """``Type: message`` of a driver's error, on one line, safe to log and show.

    The message of the DBAPI error a SQLAlchemy error wraps is used (without
    the SQL statement). URL credentials, ``password=`` values, the values of a
    key conflict and anything that looks like an e-mail address are replaced;
    hosts, ports and the driver's words stay.

    >>> driver_message(ConnectionError('connection to server at "db", port 5999 failed: '
    ...                                'Connection refused'))
    'ConnectionError: connection to server at "db", port 5999 failed: Connection refused'
    >>> driver_message(ValueError("postgresql://app:s3cret@db/x password=s3cret maria@ex.com"))
    'ValueError: postgresql://***@db/x password=*** <address>'
    """
    orig = getattr(cause, "orig", None)
    source = orig if isinstance(orig, BaseException) else cause
    text = " ".join(str(source).split())
    text = _SQL_LINE.split(text, maxsplit=1)[0]  # PostgreSQL quotes the statement after it
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _PASSWORD.sub(r"\1***", text)
    text = _KEY_VALUE.sub(r"\1=(...)", text)
    text = _ADDRESS.sub("<address>", text)
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    name = type(source).__name__
    return f"{name}: {text}" if text else name


class PublicIndexKeyWarning(UserWarning):
    """A tracker was made without ``index_key``, so it uses the public default index key.

    Lookups work the same, but someone holding the database can confirm a
    guessed address by hashing it. Pass an ``index_key`` (and never change
    it) to silence it.
    """


class UnknownAddressKey(CtAliasError, LookupError):
    """A stored address was sealed with an address key the tracker does not have.

    Attributes:
        key_id: the id of the missing key (safe to show; it reveals nothing of the key).
    """

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"a stored address was sealed with address key {key_id!r}, which is not configured: "
            "add it back to address_keys (oldest first) to read it"
        )


class CorruptRecord(CtAliasError, ValueError):
    """A sealed value does not authenticate: it was altered, or copied from another record.

    Attributes:
        record: the record and field it belongs to: ``"<storage key>:real"`` or
            ``"<storage key>:alias"`` (a keyed hash; no address).
        key_id: the id of the key it claims to be sealed with (``"none"`` for
            a plaintext value where only sealed values are allowed).
    """

    def __init__(self, record: str, key_id: str) -> None:
        self.record = record
        self.key_id = key_id
        super().__init__(
            f"the sealed address of record {record!r} (key {key_id!r}) does not authenticate: "
            "it was altered or belongs to another record"
        )


class MalformedMessage(CtAliasError, ValueError):
    """A message cannot be read safely: a field nested too deeply, a header part out of bounds.

    The relay answers such a message ``554 5.6.0``; nothing is delivered.

    Attributes:
        reason: what could not be read (never a real address).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed message: {reason}")


class ModeratorFailed(CtAliasError, RuntimeError):
    """A moderator (see :mod:`ct_alias.moderation`) raised, or returned no verdict.

    The relay answers the message ``451 4.3.0`` (the sender tries again
    later) rather than deliver it unmoderated, and logs the moderator's name
    and the type of its error: never the error's text, which may quote the
    message.

    Attributes:
        moderator: the moderator's name.
        cause: the type name of what it raised (or of what it returned).
    """

    def __init__(self, moderator: str, cause: str) -> None:
        self.moderator = moderator
        self.cause = cause
        super().__init__(f"moderator {moderator!r} failed: {cause}")


class DeliveryError(CtAliasError, ConnectionError):
    """The downstream mail server did not take a message.

    Attributes:
        code: the SMTP reply code it gave (or 451 when it could not be reached).
        temporary: True when trying again later may succeed.
        status: the RFC 3463 enhanced status code it gave (``4.0.0`` or
            ``5.0.0`` when it gave none; ``4.4.1`` when it could not be reached).
    """

    def __init__(
        self, code: int, detail: str, *, temporary: bool, status: str | None = None
    ) -> None:
        self.code = code
        self.temporary = temporary
        self.status = status or ("4.0.0" if temporary else "5.0.0")
        super().__init__(f"downstream delivery failed ({code} {self.status}): {detail}")


class AliasCollision(StorageError):
    """A new alias's address is already taken by a different record.

    Raised by a store's get-or-create; the tracker retries with a fresh token.
    """

    def __init__(self) -> None:
        super().__init__("creating an alias: alias address already taken", transient=False)


def _shown(alias: object) -> str:
    """A bounded, printable rendering of untrusted alias text for messages.

    Only the first characters of the local part are shown: a simple alias, or
    a real address passed by mistake, must not end up whole in a log line.
    The full value stays available on the exception's ``alias`` attribute.
    """
    text = alias if isinstance(alias, str) else repr(alias)
    local, at, domain = text.rpartition("@")
    if at:
        text = (local[:3] + "..." if len(local) > 3 else local) + at + domain
    if not (text.isascii() and text.isprintable()):
        text = "".join(c if c.isprintable() and c.isascii() else f"\\u{ord(c):04x}" for c in text)
    return text if len(text) <= 100 else text[:97] + "..."
