"""The tracker: the façade a shop's code calls to mask and unmask addresses."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from attrs import evolve

from . import _arguments as check
from ._erasure import ErasureMethods, ErasureReceipt, OwnerBackfill
from ._lifecycle import alias_event, retirement
from ._lifecycle_methods import LifecycleMethods
from ._policies import PolicySet, Verified
from ._recording import TimelineMethods
from ._rules import Folds, RulesMethods
from ._sealing import RecordSealer, Rotation
from .addresses import RealAddress, normalize_address
from .aliases import Alias, Role
from .blind_index import BlindIndex
from .bounces import make_bounce_address, read_bounce_address
from .clock import Clock, SystemClock
from .codec import AliasCodec
from .errors import (
    AliasCollision,
    ConfigurationError,
    CorruptRecord,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    MalformedAlias,
    PublicIndexKeyWarning,
    RevokedAlias,
    UnknownAlias,
)
from .policy import Policy
from .storage.base import PolicyStorage, SlotLookup, Storage, Tombstone
from .timeline import (
    AliasEvent,
)
from .vocabulary import DEFAULT_STORE

__all__ = [
    "DEFAULT_POLICY_REFRESH",
    "DEFAULT_STORE",
    "ErasureReceipt",
    "OwnerBackfill",
    "Rotation",
    "Tracker",
    "Verified",
]

logger = logging.getLogger(__name__)

#: How long a tracker keeps its copy of the stored policies before reading them again.
DEFAULT_POLICY_REFRESH = timedelta(seconds=10)

_COLLISION_RETRIES = 4


class Tracker(RulesMethods, TimelineMethods, ErasureMethods, LifecycleMethods):
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
            thief, and a :class:`~ct_alias.errors.PublicIndexKeyWarning` says
            so; it is required with ``address_keys``.
        address_keys: keys to encrypt addresses at rest, oldest → newest (the
            ``crypto`` extra); see :mod:`ct_alias.crypto`.
        policy_refresh: how stale a store's policy may be. On a storage that
            keeps policies (a :class:`~ct_alias.storage.PolicyStorage`, as
            :class:`~ct_alias.storage.MemoryStorage` and ``SQLStorage`` do),
            :meth:`set_policy` writes there and the tracker re-reads every
            store's policy when its copy is older than this (by ``clock``), so
            every tracker on the storage sees a change within this time
            (default :data:`DEFAULT_POLICY_REFRESH`, 10 seconds; ``0`` reads
            them on every call).
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
        policy_refresh: timedelta = DEFAULT_POLICY_REFRESH,
        store: Storage | None = None,
    ) -> None:
        storage = check.storage(storage, store)
        if not isinstance(default_policy, Policy):
            raise ConfigurationError("default_policy must be a Policy")
        if isinstance(address_keys, (str, bytes)):
            address_keys = [address_keys]
        if address_keys is not None and index_key is None:
            raise ConfigurationError(
                "address_keys need an index_key too: with the public default, someone holding "
                "the database could confirm a guessed address through its blind index"
            )
        self._records = RecordSealer.from_keys(
            address_keys, allow_plaintext=bool(allow_plaintext_addresses)
        )
        self._storage = storage
        self._codec = AliasCodec(keys)
        self._clock: Clock = clock if clock is not None else SystemClock()
        if index_key is None:
            warnings.warn(
                PublicIndexKeyWarning(
                    "no index_key: the public default index key is used, so someone holding "
                    "the database can confirm a guessed address; pass index_key (a secret that "
                    "never changes)"
                ),
                stacklevel=2,
            )
        self._index = BlindIndex(index_key)
        self._lock = threading.Lock()
        self._default_policy = default_policy
        self._built = PolicySet.build(self._codec, default_policy)
        self._policy_storage = storage if isinstance(storage, PolicyStorage) else None
        self._slots = storage if isinstance(storage, SlotLookup) else None
        self._policy_refresh = check.duration("policy_refresh", policy_refresh)
        self._policies_fresh: tuple[datetime, datetime] | None = None
        self._folds = Folds()

    def __repr__(self) -> str:
        return (
            f"<Tracker storage={self._storage!r} keys={self._codec.key_count} "
            f"domains={sorted(self._built.domains)}>"
        )

    # -- configuration -----------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The storage backend."""
        return self._storage

    @property
    def store(self) -> Storage:
        """Deprecated name of :attr:`storage` (a *store* is a shop)."""
        warnings.warn("Tracker.store is deprecated: use Tracker.storage", DeprecationWarning, 2)
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
        return self._policies.domains

    def set_policy(self, store: str, policy: Policy) -> None:
        """Give ``store`` its own policy (replacing any earlier one).

        On a storage that keeps policies (:class:`~ct_alias.storage.PolicyStorage`)
        the policy is stored, and every tracker on that storage uses it within
        its ``policy_refresh``; this one at once. Otherwise it lives in this
        tracker's memory only.

        Aliases already issued keep working as long as their alias domain is
        still one of the tracker's domains.

        Raises:
            ConfigurationError: ``policy`` names an unknown strategy.
            InvalidArgument: ``store`` is not a valid store name.
            StorageError: the storage failed; nothing changed.
        """
        store = check.store(store)
        if not isinstance(policy, Policy):
            raise ConfigurationError("set_policy() needs a Policy")
        self._built.with_policy(store, policy)  # refuses an unknown strategy before storing
        if self._policy_storage is not None:
            self._policy_storage.save_policy(store, policy.to_data())
        with self._lock:
            self._built = self._built.with_policy(store, policy)

    def policy_for(self, store: str) -> Policy:
        """The policy that applies to ``store`` (the stored one, at most ``policy_refresh`` old)."""
        return self._policies.policy_for(store)

    @property
    def _policies(self) -> PolicySet:
        """The policy set, re-read from storage when the copy is older than ``policy_refresh``."""
        if self._policy_storage is None:
            return self._built
        return self._policies_at(self._clock.now())

    def _policies_at(self, now: datetime) -> PolicySet:
        """:attr:`_policies`, with the clock already read."""
        storage = self._policy_storage
        if storage is None:
            return self._built
        fresh = self._policies_fresh
        if fresh is not None and fresh[0] <= now < fresh[1]:
            return self._built
        stored = storage.policies()
        policies: dict[str, Policy] = {}
        for name, data in stored.items():
            try:
                policy = Policy.from_data(data)
                PolicySet.build(self._codec, self._default_policy, {name: policy})
            except ConfigurationError as exc:
                logger.warning("ignoring the stored policy of store %r: %s", name, exc)
                continue
            known = self._built.policies.get(name)
            policies[name] = known if known == policy else policy
        built = PolicySet.build(self._codec, self._default_policy, policies)
        try:
            stale_at = now + self._policy_refresh
        except OverflowError:  # a clock near the end of time
            stale_at = datetime.max.replace(tzinfo=UTC)
        with self._lock:
            self._built = built
            # read at, and stale from: one tuple, so a reader never pairs two reads' times
            self._policies_fresh = (now, stale_at)
        return built

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
        conversation = check.conversation(conversation)
        store = check.store(store)
        role = check.role(role)
        now = self._clock.now()
        policies = self._policies_at(now)
        policy = policies.policy_for(store)
        expires_at = _whole_seconds(now + policy.ttl)
        # str(role) is role.value (a StrEnum), without the enum property's lookup
        slot = self._index.slot_key(store, conversation, str(role), real.key)
        if self._slots is not None:
            # the slot first: an alias that already works costs no token, record or event
            current = self._slots.current_alias(slot, now=now)
            if current is not None:
                existing = self._reusable(current, real, now)
                if existing is not None:
                    return existing
        owner = self._index.owner_key(real.key)
        for _ in range(_COLLISION_RETRIES):
            strategy, alias_address = policies.make(policy, real, expires_at)
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
                owner=owner,
            )
            sealed = self._records.seal(candidate)
            created_event = alias_event(candidate, AliasEvent.CREATED, now)
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
            existing = self._reusable(alias, real, now)
            if existing is not None:
                return existing
        raise AliasCollision()

    def _reusable(self, stored: Alias, real: RealAddress, now: datetime) -> Alias | None:
        """The stored alias of ``real``'s slot as callers see it, or ``None`` once retired.

        Raises:
            CorruptRecord: the record's slot column was moved onto ``real``'s slot.
        """
        existing = self._records.present(stored)
        if (
            existing.real_address != real.address
            and normalize_address(existing.real_address).key != real.key
        ):
            # the slot column of another record was changed to this one's
            raise CorruptRecord(existing.key + ":slot", "none")
        dead = self._why_unreadable(existing)
        if dead is None:
            return existing
        # Its signing key or its alias domain was retired: it can never work
        # again. Retire it from its slot (recorded), then issue a fresh one.
        self._apply(retirement(existing, now=now, why=dead))
        return None

    def _why_unreadable(self, alias: Alias) -> str | None:
        """Why this tracker can no longer read ``alias`` back, or ``None`` if it can."""
        try:
            self._policies.read(alias.address)
        except ForgedAlias:
            return "signing key retired"
        except MalformedAlias:
            return "alias domain retired"
        return None

    # -- unmask --------------------------------------------------------------

    def verify(self, alias: str) -> Verified:
        """Check an alias's syntax and signature, without storage or expiry checks.

        Raises:
            MalformedAlias: not one of this tracker's aliases at all.
            ForgedAlias: its signature does not verify with any current key.
        """
        canonical, token, strategy = self._policies.read(alias)
        return Verified(canonical, token, strategy)

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
            reason = check.text("reason", reason, check.MAX_REASON)
        now = self._clock.now()
        canonical, expires_at = self._policies_at(now).expiry(alias)
        if now >= expires_at:
            raise ExpiredAlias(canonical, expires_at, ExpiryReason.TTL)
        record = self._stored_alias(canonical)
        record.check_usable(now)
        if reason is not None:
            self._storage.append(alias_event(record, AliasEvent.UNMASKED, now, reason=reason))
        return record

    def unmask_among(self, alias: str, participants: Sequence[Alias]) -> Alias | None:
        """:meth:`unmask` answered from ``participants``, read fresh by the caller; no storage call.

        ``participants`` must be a read of the alias's own conversation made
        *now* (the relay reads them once per message and shows them to the
        header rewrite too): the record's state (revoked, expired, ended) is
        taken from it, as :meth:`unmask` takes it from its own read.

        Returns:
            The alias, or ``None`` when it is not among ``participants``
            (purged, or another conversation's): call :meth:`unmask`, which
            says why.

        Raises:
            MalformedAlias, ForgedAlias, ExpiredAlias, RevokedAlias: as :meth:`unmask`.
        """
        now = self._clock.now()
        canonical, expires_at = self._policies_at(now).expiry(alias)
        if now >= expires_at:
            raise ExpiredAlias(canonical, expires_at, ExpiryReason.TTL)
        key = self._index.alias_key(canonical)
        for record in participants:
            if record.key == key:
                found = record if record.address == canonical else evolve(record, address=canonical)
                found.check_usable(now)
                return found
        return None

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
        if isinstance(record, Tombstone):
            return record
        return self._records.present(record, verified.address)

    def bounce_address(self, alias: Alias) -> str | None:
        """The envelope sender for mail delivered for ``alias``: a signed, expiring bounce address.

        Delivery reports sent to it come back to ``alias``'s conversation (see
        :mod:`ct_alias.bounces`). ``None`` when it would not fit 254 octets
        under the store's alias domain.
        """
        domain = self.policy_for(alias.store).domain
        return make_bounce_address(self._codec, alias.key, domain, self._clock.now())

    def bounced(self, address: str) -> Alias:
        """The alias whose delivery a bounce address reports on.

        Checked like an alias: forged, malformed and expired bounce addresses
        are refused from their text alone, without a storage call.

        Raises:
            MalformedAlias: not a bounce address under one of the alias domains.
            ForgedAlias: its signature does not verify with any current key.
            ExpiredAlias: the bounce address's time is over.
            UnknownAlias: the alias it names is not in storage (or was purged).
        """
        if not isinstance(address, str) or not self.owns(address):
            raise MalformedAlias(address, "not under one of this tracker's alias domains")
        canonical = address.lower()
        domain = canonical.rpartition("@")[2]
        key, expires_at = read_bounce_address(self._codec, canonical, domain)
        if self._clock.now() >= expires_at:
            raise ExpiredAlias(canonical, expires_at, ExpiryReason.TTL)
        record = self._storage.get(key)
        if record is None or isinstance(record, Tombstone):
            raise UnknownAlias(canonical)
        return self._records.present(record)

    def owns(self, address: object) -> bool:
        """Whether ``address`` is under one of this tracker's alias domains (any case)."""
        return self._policies.owns(address)

    def _stored_alias(self, canonical: str) -> Alias:
        """The stored record of a verified alias address, working or not.

        Unlike :meth:`lookup`, a purged alias (a tombstone) raises.

        Raises:
            UnknownAlias: not in storage.
            RevokedAlias, ExpiredAlias: purged.
        """
        record = self._storage.get(self._index.alias_key(canonical))
        if record is None:
            raise UnknownAlias(canonical)
        if isinstance(record, Tombstone):
            if record.reason is ExpiryReason.REVOKED:
                raise RevokedAlias(canonical, record.expired_at)
            raise ExpiredAlias(canonical, record.expired_at, record.reason)
        return self._records.present(record, canonical)

    def aliases(self, conversation: str, *, store: str = DEFAULT_STORE) -> list[Alias]:
        """Every alias of ``store``'s ``conversation`` in storage (not purged), oldest first."""
        conversation = check.conversation(conversation)
        store = check.store(store)
        return [self._records.present(a) for a in self._storage.aliases(conversation, store=store)]


def _whole_seconds(moment: datetime) -> datetime:
    # ``moment.replace(microsecond=0)``, in a third of its time (a keyword call to replace
    # costs about 2 µs, as much as the rest of a mask's date work)
    return moment - _MICROSECOND * moment.microsecond


_MICROSECOND = timedelta(microseconds=1)
