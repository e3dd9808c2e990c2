"""The tracker: the façade a shop's code calls to mask and unmask addresses."""

from __future__ import annotations

import functools
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from attrs import evolve, frozen

from ._messages import compose_notification, message_data, message_dedup_key
from .addresses import RealAddress, normalize_address
from .aliases import Alias, AliasStatus, Role
from .blind_index import BlindIndex
from .clock import Clock, SystemClock, as_utc
from .codec import AliasCodec, Token
from .crypto import AddressCipher, Cleartext, Sealer, is_sealed
from .errors import (
    AliasCollision,
    ConfigurationError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    InvalidArgument,
    MalformedAlias,
    MissingParticipant,
    RevokedAlias,
    UnknownAlias,
    UnrepresentableAddress,
)
from .mail import summarize
from .policy import Fallback, Policy
from .storage.base import AliasChange, Sealed, Storage, Tombstone
from .strategies import MAX_ADDRESS, AliasStrategy, ComplexStrategy, strategy_factory
from .timeline import (
    AliasEvent,
    Direction,
    EntryKind,
    OrderEvent,
    Timeline,
    TimelineEntry,
    decode_cursor,
    iso_utc,
)

if TYPE_CHECKING:
    from .auth import Authentication

__all__ = ["DEFAULT_STORE", "Rotation", "Tracker", "Verified"]

logger = logging.getLogger(__name__)

#: The store name used when a caller does not say which store (single-tenant use).
DEFAULT_STORE = "default"

_MAX_CONVERSATION = 255
_MAX_STORE = 64
_MAX_EVENT = 64
_MAX_REASON = 500
_MAX_SUBJECT = 998
_MAX_DATA = 65_536
_MAX_DURATION = timedelta(days=3650)
_COLLISION_RETRIES = 4


@frozen
class Verified:
    """An alias whose signature verified, before any storage lookup.

    Attributes:
        address: the alias in canonical (lower-case) form.
        token: the verified token, with its expiry.
        strategy: the name of the strategy that read it.
    """

    address: str
    token: Token
    strategy: str


@frozen
class Rotation:
    """Progress of :meth:`Tracker.rotate_address_keys`.

    Attributes:
        scanned: records read so far.
        resealed: records re-sealed with the newest key so far.
        last_key: the storage key of the last record read (resume after it).
        done: whether every record has been read.
    """

    scanned: int
    resealed: int
    last_key: str | None
    done: bool


@frozen
class _Config:
    """An immutable snapshot of the policies, swapped whole on change."""

    default: Policy
    policies: dict[str, Policy]
    strategies: dict[str, AliasStrategy]
    domains: frozenset[str]


class Tracker:
    """Masks real addresses into aliases and resolves aliases back.

    Args:
        storage: where aliases and timelines are kept (any
            :class:`~ct_alias.storage.Storage`). ``store=`` is its deprecated
            former name (a *store* is a shop).
        keys: the signing secrets, oldest → newest; the newest signs new
            aliases, every listed key verifies; drop a key to retire its aliases.
        default_policy: the policy of every store without its own.
        clock: the time source (default: the system's UTC clock).
        index_key: the secret of the blind indexes stores are keyed by; set it
            once and never change it (see :mod:`ct_alias.blind_index`). The
            default is a public key: fine for tests, weak against a database
            thief; it is required with ``address_keys``.
        address_keys: keys to encrypt addresses at rest, oldest → newest (the
            ``crypto`` extra); see :mod:`ct_alias.crypto`.
        allow_plaintext_addresses: with ``address_keys``, also accept records
            whose addresses are not sealed (stored before encryption was turned
            on). Off by default: a plaintext value in an encrypted database may
            have been planted. Turn it on only until
            :meth:`rotate_address_keys` has sealed the old records.

    A tracker is safe to share between threads.
    """

    def __init__(
        self,
        *,
        storage: Storage | None = None,
        keys: Iterable[str | bytes] | str | bytes,
        default_policy: Policy,
        clock: Clock | None = None,
        index_key: str | bytes | None = None,
        address_keys: Iterable[str | bytes] | None = None,
        allow_plaintext_addresses: bool = False,
        store: Storage | None = None,
    ) -> None:
        if store is not None:
            if storage is not None:
                raise ConfigurationError("pass storage= only (store= is its deprecated name)")
            warnings.warn(
                "Tracker(store=...) is deprecated: use Tracker(storage=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            storage = store
        if storage is None:
            raise ConfigurationError("Tracker() needs storage=, e.g. MemoryStorage()")
        if not isinstance(default_policy, Policy):
            raise ConfigurationError("default_policy must be a Policy")
        if isinstance(address_keys, (str, bytes)):
            address_keys = [address_keys]
        if address_keys is not None and index_key is None:
            raise ConfigurationError(
                "address_keys need an index_key too: with the public default, someone holding "
                "the database could confirm a guessed address through its blind index"
            )
        self._sealer: Sealer = Cleartext() if address_keys is None else AddressCipher(address_keys)
        self._allow_plaintext = bool(allow_plaintext_addresses)
        self._storage = storage
        self._codec = AliasCodec(keys)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._index = BlindIndex(index_key)
        self._lock = threading.Lock()
        self._config = self._configure(default_policy, {})

    def __repr__(self) -> str:
        return (
            f"<Tracker storage={self._storage!r} keys={self._codec.key_count} "
            f"domains={sorted(self._config.domains)}>"
        )

    # -- configuration -----------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The storage backend."""
        return self._storage

    @property
    def store(self) -> Storage:
        """Deprecated name of :attr:`storage` (a *store* is a shop)."""
        warnings.warn(
            "Tracker.store is deprecated: use Tracker.storage", DeprecationWarning, stacklevel=2
        )
        return self._storage

    @property
    def index(self) -> BlindIndex:
        """The blind index (keyed hashes) storage keys and relayed message ids are made with."""
        return self._index

    @property
    def clock(self) -> Clock:
        """The time source."""
        return self._clock

    @property
    def domains(self) -> frozenset[str]:
        """Every alias domain of the default and the per-store policies."""
        return self._config.domains

    def _configure(self, default: Policy, policies: dict[str, Policy]) -> _Config:
        strategies: dict[str, AliasStrategy] = {}
        for name in (
            "complex",
            "simple",
            default.strategy,
            *(p.strategy for p in policies.values()),
        ):
            if name not in strategies:
                strategy = strategy_factory(name)(self._codec)
                if getattr(strategy, "name", None) != name:
                    raise ConfigurationError(
                        f"the factory of strategy {name!r} built one named "
                        f"{getattr(strategy, 'name', None)!r}"
                    )
                strategies[name] = strategy
        domains = frozenset({default.domain, *(p.domain for p in policies.values())})
        return _Config(default, policies, strategies, domains)

    def set_policy(self, store: str, policy: Policy) -> None:
        """Give ``store`` its own policy (replacing any earlier one).

        Aliases already issued keep working as long as their alias domain is
        still one of the tracker's domains.

        Raises:
            ConfigurationError: ``policy`` names an unknown strategy.
            InvalidArgument: ``store`` is not a valid store name.
        """
        store = _identifier("store", store, _MAX_STORE)
        if not isinstance(policy, Policy):
            raise ConfigurationError("set_policy() needs a Policy")
        with self._lock:
            policies = {**self._config.policies, store: policy}
            self._config = self._configure(self._config.default, policies)

    def policy_for(self, store: str) -> Policy:
        """The policy that applies to ``store``."""
        config = self._config
        return config.policies.get(store, config.default)

    # -- mask ----------------------------------------------------------------

    def mask(
        self,
        address: str,
        *,
        conversation: str,
        store: str = DEFAULT_STORE,
        role: Role | str = Role.CUSTOMER,
    ) -> Alias:
        """Return the alias of ``address`` in ``conversation``, issuing one if needed.

        Idempotent: while an alias is usable, the same (store, conversation,
        role, address) — the address compared case-insensitively — returns it
        again. Once it has expired or been revoked, a fresh one is issued.

        Raises:
            InvalidAddress: ``address`` is not a valid e-mail address.
            UnrepresentableAddress: the policy's strategy cannot represent it
                and the policy says ``on_unrepresentable="error"``.
            InvalidArgument: a bad conversation, store or role.
            StorageError: the storage failed; nothing was half-written.
        """
        real = normalize_address(address)
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        store = _identifier("store", store, _MAX_STORE)
        role = _role(role)
        config = self._config
        policy = config.policies.get(store, config.default)
        now = self._clock.now()
        expires_at = _whole_seconds(now + policy.ttl)
        slot = self._index.slot_key(store, conversation, role.value, real.key)
        for _ in range(_COLLISION_RETRIES):
            strategy, alias_address = self._make(config, policy, real, expires_at)
            key = self._index.alias_key(alias_address)
            candidate = Alias(
                address=alias_address,
                real_address=real.address,
                conversation=conversation,
                store=store,
                role=role,
                strategy=strategy,
                created_at=now,
                expires_at=expires_at,
                key=key,
                slot=slot,
            )
            sealed = self._seal(candidate)
            created_event = _alias_event(candidate, AliasEvent.CREATED, now)
            try:
                alias, created = self._storage.get_or_create(
                    sealed, now=now, entries=[created_event]
                )
            except AliasCollision:
                logger.warning("alias collision in store %r; retrying with a new token", store)
                continue
            if created:
                logger.debug("issued %s alias for conversation %r", strategy, conversation)
                return candidate
            existing = self._present(alias)
            dead = self._why_unreadable(existing)
            if dead is None:
                return existing
            # Its signing key or its alias domain was retired: it can never work
            # again. Retire it from its slot (recorded), then issue a fresh one.
            self._storage.update(
                [AliasChange(existing.key, AliasStatus.REVOKED, existing.ends_at, revoked_at=now)],
                entries=[_alias_event(existing, AliasEvent.REVOKED, now, reason=dead)],
            )
        raise AliasCollision()

    def _why_unreadable(self, alias: Alias) -> str | None:
        """Why this tracker can no longer read ``alias`` back, or ``None`` if it can."""
        try:
            self._verify(alias.address)
        except ForgedAlias:
            return "signing key retired"
        except MalformedAlias:
            return "alias domain retired"
        return None

    def _seal(self, alias: Alias) -> Alias:
        """The alias as stores keep it: its addresses sealed when address keys are set."""
        sealer = self._sealer
        if isinstance(sealer, Cleartext):
            return alias
        return evolve(
            alias,
            address=sealer.seal(alias.address, context=alias.key + ":alias"),
            real_address=sealer.seal(alias.real_address, context=alias.key + ":real"),
        )

    def _make(
        self, config: _Config, policy: Policy, real: RealAddress, expires_at: datetime
    ) -> tuple[str, str]:
        strategy = config.strategies[policy.strategy]
        try:
            address = strategy.make(real, domain=policy.domain, expires_at=expires_at)
        except UnrepresentableAddress:
            if policy.on_unrepresentable is Fallback.ERROR or strategy.name == ComplexStrategy.name:
                raise
            strategy = config.strategies[ComplexStrategy.name]
            address = strategy.make(real, domain=policy.domain, expires_at=expires_at)
        if not isinstance(address, str) or len(address) > MAX_ADDRESS or not address.isascii():
            raise ConfigurationError(f"strategy {strategy.name!r} made an invalid alias")
        return strategy.name, address.lower()

    # -- unmask --------------------------------------------------------------

    def verify(self, alias: str) -> Verified:
        """Check an alias's syntax and signature, without storage or expiry checks.

        Raises:
            MalformedAlias: not one of this tracker's aliases at all.
            ForgedAlias: its signature does not verify with any current key.
        """
        canonical, token, strategy = self._verify(alias)
        return Verified(canonical, token, strategy)

    def _verify(self, alias: str) -> tuple[str, Token, str]:
        """:meth:`verify`, without building a :class:`Verified` (the unmask hot path)."""
        if not isinstance(alias, str):
            raise MalformedAlias(alias, f"expected a str, not {type(alias).__name__}")
        if (
            len(alias) > MAX_ADDRESS
            or not alias.isascii()
            or not alias.isprintable()
            or " " in alias
        ):
            raise MalformedAlias(alias, "not a printable ASCII address of at most 254 characters")
        canonical = alias.lower()
        local, at, domain = canonical.rpartition("@")
        if not at or not local or not domain:
            raise MalformedAlias(alias, "no local part, '@' and domain")
        config = self._config
        damaged: MalformedAlias | None = None
        for alias_domain in _suffixes(domain, config.domains):
            for strategy in config.strategies.values():
                try:
                    token = strategy.read(local, domain, alias_domain=alias_domain)
                except MalformedAlias as exc:
                    damaged = damaged or MalformedAlias(alias, exc.reason)
                    continue
                except ForgedAlias:
                    raise ForgedAlias(canonical) from None
                if token is not None:
                    return canonical, token, strategy.name
        raise damaged or MalformedAlias(alias, "not under one of this tracker's alias domains")

    def unmask(self, alias: str, *, reason: str | None = None) -> Alias:
        """Return the :class:`Alias` record behind an alias address (any case).

        Forged, malformed and expired aliases are refused from the alias text
        alone, without any storage call.

        Args:
            alias: the alias address.
            reason: why the real address is needed. When given, the unmask is
                recorded on the conversation's timeline (the audit trail);
                without it, the call is a plain lookup and records nothing.

        Raises:
            MalformedAlias: not one of this tracker's aliases at all.
            ForgedAlias: its signature does not verify with any current key.
            ExpiredAlias: its time to live or grace period is over.
            RevokedAlias: it was revoked.
            UnknownAlias: correctly signed, but not in storage.
            InvalidArgument: ``reason`` is not a short printable text.
            StorageError: the storage failed.
        """
        if reason is not None:
            reason = _text("reason", reason, _MAX_REASON)
        canonical, token, _ = self._verify(alias)
        now = self._clock.now()
        expires_at = token.expires_at
        if now >= expires_at:
            raise ExpiredAlias(canonical, expires_at, ExpiryReason.TTL)
        record = self._lookup(canonical)
        record.check_usable(now)
        if reason is not None:
            self._storage.append(_alias_event(record, AliasEvent.UNMASKED, now, reason=reason))
        return record

    def lookup(self, alias: str) -> Alias | Tombstone:
        """The stored record of a correctly signed alias, whether it still works or not.

        Unlike :meth:`unmask` this reads storage for expired aliases too (the
        relay uses it to record a refused delivery on the right timeline). It
        records nothing.

        Raises:
            MalformedAlias: not one of this tracker's aliases at all.
            ForgedAlias: its signature does not verify with any current key.
            UnknownAlias: correctly signed, but not in storage.
        """
        verified = self.verify(alias)
        record = self._storage.get(self._index.alias_key(verified.address))
        if record is None:
            raise UnknownAlias(verified.address)
        return record if isinstance(record, Tombstone) else self._present(record, verified.address)

    def owns(self, address: object) -> bool:
        """Whether ``address`` is under one of this tracker's alias domains (any case)."""
        if not isinstance(address, str):
            return False
        domain = address.rpartition("@")[2].lower()
        return bool(domain) and bool(_suffixes(domain, self._config.domains))

    def _lookup(self, canonical: str) -> Alias:
        """The stored, usable-or-not record of a verified alias address."""
        record = self._storage.get(self._index.alias_key(canonical))
        if record is None:
            raise UnknownAlias(canonical)
        if isinstance(record, Tombstone):
            if record.reason is ExpiryReason.REVOKED:
                raise RevokedAlias(canonical, record.expired_at)
            raise ExpiredAlias(canonical, record.expired_at, record.reason)
        return self._present(record, canonical)

    def _present(
        self, record: Alias, address: str | None = None, *, migrating: bool = False
    ) -> Alias:
        """The record as callers see it: addresses opened, the alias in canonical form.

        ``migrating`` lets plaintext records through (for :meth:`rotate_address_keys`).

        Raises:
            UnknownAddressKey: it was sealed with an address key that is gone.
            CorruptRecord: its sealed addresses do not authenticate.
        """
        sealer = self._sealer
        if isinstance(sealer, Cleartext):  # the common case, on the unmask hot path
            if is_sealed(record.real_address):  # sealed by a tracker with address keys
                sealer.open(record.real_address, context=record.key + ":real")
            if address is None or address == record.address:
                return record
            return evolve(record, address=address)
        plaintext = migrating or self._allow_plaintext
        real = sealer.open(
            record.real_address, context=record.key + ":real", allow_plaintext=plaintext
        )
        if address is None:
            address = sealer.open(
                record.address, context=record.key + ":alias", allow_plaintext=plaintext
            )
        if real is record.real_address and address == record.address:
            return record
        return evolve(record, address=address, real_address=real)

    def rotate_address_keys(
        self,
        *,
        batch_size: int = 500,
        after: str | None = None,
        progress: Callable[[Rotation], None] | None = None,
    ) -> Rotation:
        """Re-seal stored addresses with the newest address key, in bounded batches.

        Records already sealed with the newest key are skipped, so a rotation
        can be interrupted at any point and run again (or resumed from the
        ``last_key`` of the last progress report, as ``after``). Once it has
        finished, the older keys can be dropped from ``address_keys``.
        Plaintext records (from before encryption was turned on) are sealed too.

        Args:
            batch_size: records read and written per batch.
            after: resume after this storage key.
            progress: called after every batch with the progress so far.

        Raises:
            ConfigurationError: the tracker has no address keys.
            UnknownAddressKey: a record was sealed with a key that is not configured.
        """
        if isinstance(self._sealer, Cleartext):
            raise ConfigurationError("rotate_address_keys() needs address_keys")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgument("batch_size", "must be a positive int")
        sealer = self._sealer
        scanned = resealed = 0
        cursor = after
        while batch := self._storage.scan(after=cursor, limit=batch_size):
            updates = []
            for record in batch:
                if sealer.needs_reseal(record.real_address) or sealer.needs_reseal(record.address):
                    plain = self._present(record, migrating=True)
                    sealed = self._seal(plain)
                    updates.append(Sealed(record.key, sealed.address, sealed.real_address))
            resealed += self._storage.reseal(updates) if updates else 0
            scanned += len(batch)
            cursor = batch[-1].key
            if progress is not None:
                progress(Rotation(scanned, resealed, cursor, done=False))
        return Rotation(scanned, resealed, cursor, done=True)

    def aliases(self, conversation: str) -> list[Alias]:
        """Every alias of ``conversation`` still in storage (not purged), oldest first."""
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        return [self._present(a) for a in self._storage.aliases(conversation)]

    # -- lifecycle -------------------------------------------------------------

    def revoke(self, alias: Alias | str, *, reason: str | None = None) -> Alias:
        """Kill one alias at once: from now on ``unmask`` raises :class:`RevokedAlias`.

        Revoking a revoked alias changes nothing. A later :meth:`mask` of the
        same participant issues a fresh alias.

        Args:
            alias: the :class:`Alias`, or its address.
            reason: why (recorded on the timeline).

        Raises:
            MalformedAlias, ForgedAlias: ``alias`` is not a valid alias address.
            UnknownAlias: it is not in storage.
            ExpiredAlias: it was already purged.
        """
        if reason is not None:
            reason = _text("reason", reason, _MAX_REASON)
        canonical = alias.address if isinstance(alias, Alias) else self.verify(alias).address
        record = self._lookup(canonical)
        if record.status is AliasStatus.REVOKED:
            return record
        now = self._clock.now()
        change = AliasChange(record.key, AliasStatus.REVOKED, record.ends_at, revoked_at=now)
        event = _alias_event(record, AliasEvent.REVOKED, now, reason=reason)
        changed, _ = self._storage.update([change], entries=[event])
        return self._present(changed[0], canonical) if changed else record

    def end(self, conversation: str, *, grace: timedelta | None = None) -> list[Alias]:
        """End every working alias of ``conversation`` now (as an ending event would).

        Args:
            conversation: the conversation.
            grace: how long they keep working; default: each alias's store policy's grace.

        Returns:
            The aliases that were ended.
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        if grace is not None:
            grace = _duration("grace", grace)
        now = self._clock.now()
        changes, entries = self._ending(conversation, now, None, grace)
        changed, _ = self._storage.update(changes, entries=entries)
        return [self._present(a) for a in changed]

    def _ending(
        self, conversation: str, at: datetime, event: str | None, grace: timedelta | None
    ) -> tuple[list[AliasChange], list[TimelineEntry]]:
        """The changes and entries that end a conversation's aliases because of ``event``."""
        now = self._clock.now()
        changes: list[AliasChange] = []
        entries: list[TimelineEntry] = []
        for alias in self._storage.aliases(conversation):
            policy = self.policy_for(alias.store)
            if event is not None and event not in policy.end_on:
                continue
            if alias.status is not AliasStatus.ACTIVE or not alias.usable_at(now):
                continue
            ends_at = min(at + (policy.grace if grace is None else grace), alias.expires_at)
            if alias.ends_at is not None:
                ends_at = min(ends_at, alias.ends_at)
            changes.append(AliasChange(alias.key, AliasStatus.ENDED, ends_at))
            entries.append(
                _alias_event(alias, AliasEvent.ENDED, at, endsAt=iso_utc(ends_at), by=event)
            )
        return changes, entries

    def reactivate(self, conversation: str, *, for_: timedelta) -> list[Alias]:
        """Reopen a conversation's ended aliases for late mail, for a bounded time.

        Each alias works again until ``now + for_`` — never beyond its own
        expiry. Revoked and expired aliases stay dead. Each reactivation is
        recorded on the timeline.

        Returns:
            The aliases that were reactivated.
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        for_ = _duration("for_", for_, positive=True)
        now = self._clock.now()
        changes: list[AliasChange] = []
        entries: list[TimelineEntry] = []
        for alias in self._storage.aliases(conversation):
            if alias.status is AliasStatus.REVOKED or now >= alias.expires_at:
                continue
            if alias.status is not AliasStatus.ENDED and alias.ends_at is None:
                continue  # never ended: nothing to reopen
            until = min(now + for_, alias.expires_at)
            changes.append(AliasChange(alias.key, AliasStatus.ACTIVE, until))
            entries.append(_alias_event(alias, AliasEvent.REACTIVATED, now, until=iso_utc(until)))
        changed, _ = self._storage.update(changes, entries=entries)
        return [self._present(a) for a in changed]

    def purge(self, *, older_than: timedelta = timedelta(0)) -> int:
        """Remove the addresses of aliases that stopped working more than ``older_than`` ago.

        What is left of each is a tombstone (a keyed hash of its alias address
        and its metadata): it is never issued again, and mail to it is refused
        as expired, not unknown. Timelines keep their entries: they reference
        participants by key, never by address, but keep what was on the wire
        of everyone else (a third party in ``Cc``), subjects and first words.

        Returns:
            How many aliases were purged.
        """
        older_than = _duration("older_than", older_than)
        now = self._clock.now()
        return self._storage.purge(before=now - older_than, now=now)

    # -- timeline --------------------------------------------------------------

    def record_event(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        at: datetime | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        """Record an order event (or a host-defined one) on the timeline.

        If a policy of the conversation's aliases lists the event in
        ``end_on``, those aliases end (working on through the policy's grace
        period counted from ``at``), in the same transaction.

        Args:
            conversation: the conversation (order id).
            event: an :class:`OrderEvent`, or a host-defined name (1-64 printable characters).
            at: when it happened (aware); default now.
            data: JSON-compatible details, kept as given.

        Returns:
            The stored entry.
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        name = _event_name(event)
        at = self._clock.now() if at is None else _moment("at", at)
        details = _json_data(data)
        entry = TimelineEntry(conversation, EntryKind.EVENT, name, at, details)
        changes, endings = self._ending(conversation, at, name, None)
        _, stored = self._storage.update(changes, entries=[entry, *endings])
        return stored[0]

    def record_message(
        self,
        conversation: str,
        message: bytes | bytearray | memoryview | EmailMessage,
        *,
        direction: Direction | str,
        authentication: Authentication | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        """Record an e-mail message on the conversation's timeline.

        Only a summary is kept (addresses, subject, date, ids, size, first
        words, attachment names); participants' addresses are kept as
        references to their aliases, never as real addresses. Recording the
        same message twice (same Message-ID, or the same bytes when it has
        none) yields one entry. Malformed messages are recorded with what
        could be read, and their defects noted.

        Args:
            conversation: the conversation.
            message: raw RFC 5322 bytes, or an :class:`email.message.EmailMessage`.
            direction: :class:`Direction` (``"inbound"`` or ``"outbound"``).
            authentication: the verdict on the message's author (see
                :mod:`ct_alias.auth`), recorded with it. Unless it vouches for
                the ``From:`` domain, the author is recorded as unverified and
                never as the participant whose address it claims.
            details: JSON-compatible notes recorded under ``"relay"`` (the
                relay records what it left out of the delivered header).

        Returns:
            The stored entry (the first one, for a duplicate).
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        direction = _direction(direction)
        if isinstance(message, (bytearray, memoryview)):
            message = bytes(message)
        if not isinstance(message, (bytes, EmailMessage)):
            raise InvalidArgument(
                "message", f"expected bytes or an EmailMessage, not {type(message).__name__}"
            )
        summary = summarize(message)
        data = message_data(
            summary,
            self.aliases(conversation),
            authentication=authentication,
            alias_domains=self.domains,
        )
        if details is not None:
            data["relay"] = _json_data(details)
        entry = TimelineEntry(
            conversation,
            EntryKind.MESSAGE,
            direction.value,
            self._clock.now(),
            data,
            dedup_key=message_dedup_key(summary),
        )
        stored, _ = self._storage.append(entry)
        return stored

    def notify(
        self,
        conversation: str,
        event: OrderEvent | str,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        store: str | None = None,
        from_name: str = "",
    ) -> EmailMessage:
        """Compose the store's e-mail to the customer for an order step, and record it.

        The message is from the store's alias (``From`` and ``Reply-To``) to the
        customer's real address, with a Message-ID under the alias domain. The
        event and the message are both recorded; the message is returned for
        the host to send (with :mod:`smtplib` or its provider).

        Args:
            conversation: the conversation (order id).
            event: the order step.
            subject: the subject line.
            text: the plain-text body.
            html: an optional HTML alternative.
            store: whose notification; default: the store of the customer's alias.
            from_name: a display name for the ``From`` header (the store's name).

        Raises:
            MissingParticipant: no usable customer alias, or no store alias of that store.
            InvalidArgument: a subject with line breaks, or bodies that are not text.
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        name = _event_name(event)
        subject = _text("subject", subject, _MAX_SUBJECT)
        from_name = _text("from_name", from_name, _MAX_STORE * 2)
        for field_name, body in (("text", text), ("html", html)):
            if body is not None and not isinstance(body, str):
                raise InvalidArgument(field_name, f"expected a str, not {type(body).__name__}")
        now = self._clock.now()
        aliases = [
            a
            for a in self.aliases(conversation)
            if a.usable_at(now) and self._why_unreadable(a) is None  # never from a dead alias
        ]
        customer = _latest(aliases, Role.CUSTOMER, store)
        if customer is None:
            raise MissingParticipant(conversation, Role.CUSTOMER.value)
        shop = _latest(aliases, Role.STORE, customer.store)
        if shop is None:
            raise MissingParticipant(conversation, Role.STORE.value)
        message = compose_notification(
            sender=shop,
            recipient=customer,
            subject=subject,
            text=text,
            html=html,
            now=now,
            domain=self.policy_for(shop.store).domain,
            sender_name=from_name,
        )
        self.record_event(conversation, name, at=now)
        self.record_message(conversation, message, direction=Direction.OUTBOUND)
        return message

    def timeline(
        self, conversation: str, *, limit: int | None = None, after: str | None = None
    ) -> Timeline:
        """Read a conversation's timeline: its participants and entries, in order.

        Args:
            conversation: the conversation.
            limit: at most this many entries (a page); default all.
            after: the ``next_after`` of the previous page.

        Raises:
            InvalidArgument: a bad limit or cursor.
        """
        conversation = _identifier("conversation", conversation, _MAX_CONVERSATION)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidArgument("limit", "must be a positive int")
        position = None
        if after is not None:
            try:
                position = decode_cursor(after)
            except (TypeError, ValueError, AttributeError):
                raise InvalidArgument("after", "not a timeline cursor") from None
        entries = self._storage.entries(
            conversation, after=position, limit=None if limit is None else limit + 1
        )
        next_after = None
        if limit is not None and len(entries) > limit:
            entries = entries[:limit]
            next_after = entries[-1].cursor
        return Timeline(
            conversation=conversation,
            participants=tuple(self.aliases(conversation)),
            entries=tuple(entries),
            next_after=next_after,
            now=self._clock.now(),
        )


@functools.lru_cache(maxsize=4096)
def _suffixes(domain: str, known: frozenset[str]) -> tuple[str, ...]:
    """The known alias domains that ``domain`` is, or is under; longest first (cached)."""
    found = []
    rest = domain
    while True:
        if rest in known:
            found.append(rest)
        dot = rest.find(".")
        if dot < 0:
            return tuple(found)
        rest = rest[dot + 1 :]


def _alias_event(alias: Alias, name: AliasEvent, at: datetime, **data: Any) -> TimelineEntry:
    details = {"ref": alias.key, "role": alias.role.value, "strategy": alias.strategy}
    details.update({k: v for k, v in data.items() if v is not None})
    return TimelineEntry(alias.conversation, EntryKind.EVENT, name.value, at, details)


def _latest(aliases: list[Alias], role: Role, store: str | None) -> Alias | None:
    for alias in reversed(aliases):
        if alias.role is role and (store is None or alias.store == store):
            return alias
    return None


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(name, f"expected a str, not {type(value).__name__}")
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(name, f"must be printable text of at most {limit} characters")
    return value


def _event_name(value: object) -> str:
    if isinstance(value, OrderEvent):
        return value.value
    return _identifier("event", value, _MAX_EVENT)


def _direction(value: object) -> Direction:
    if isinstance(value, str) and value in Direction._value2member_map_:
        return Direction(value)
    raise InvalidArgument("direction", f"must be 'inbound' or 'outbound', not {value!r}")


def _duration(name: str, value: object, *, positive: bool = False) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidArgument(name, f"expected a timedelta, not {type(value).__name__}")
    if value < timedelta(0) or (positive and not value) or value > _MAX_DURATION:
        raise InvalidArgument(
            name,
            f"must be {'positive' if positive else 'zero or positive'} "
            f"and at most {_MAX_DURATION.days} days",
        )
    return value


def _moment(name: str, value: object) -> datetime:
    try:
        return as_utc(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(name, str(exc)) from None


def _json_data(data: object) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidArgument("data", f"expected a mapping, not {type(data).__name__}")
    try:
        text = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("data", f"not JSON-compatible: {exc}") from None
    if len(text) > _MAX_DATA:
        raise InvalidArgument("data", f"more than {_MAX_DATA} characters as JSON")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _identifier(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(name, f"expected a str, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise InvalidArgument(name, f"must be 1 to {limit} characters long")
    if not value.isprintable() or value != value.strip():
        raise InvalidArgument(name, "must be printable, without control characters or outer spaces")
    return value


def _role(value: object) -> Role:
    if isinstance(value, str) and value in Role._value2member_map_:
        return Role(value)
    choices = ", ".join(r.value for r in Role)
    raise InvalidArgument("role", f"must be one of {choices}, not {value!r}")


def _whole_seconds(moment: datetime) -> datetime:
    return moment - timedelta(microseconds=moment.microsecond)
