"""The tracker: the façade a shop's code calls to mask and unmask addresses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from attrs import frozen

from .addresses import RealAddress, normalize_address
from .aliases import Alias, Role
from .blind_index import BlindIndex
from .clock import Clock, SystemClock
from .codec import AliasCodec, Token
from .errors import (
    AliasCollision,
    ConfigurationError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    InvalidArgument,
    MalformedAlias,
    UnknownAlias,
    UnrepresentableAddress,
)
from .policy import Fallback, Policy
from .storage.base import AliasStore
from .strategies import MAX_ADDRESS, AliasStrategy, ComplexStrategy, strategy_factory

__all__ = ["DEFAULT_STORE", "Tracker", "Verified"]

logger = logging.getLogger(__name__)

#: The store name used when a caller does not say which store (single-tenant use).
DEFAULT_STORE = "default"

_MAX_CONVERSATION = 255
_MAX_STORE = 64
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
class _Config:
    """An immutable snapshot of the policies, swapped whole on change."""

    default: Policy
    policies: dict[str, Policy]
    strategies: dict[str, AliasStrategy]
    domains: frozenset[str]


class Tracker:
    """Masks real addresses into aliases and resolves aliases back.

    Args:
        store: where aliases are kept (any :class:`~ct_alias.storage.AliasStore`).
        keys: the signing secrets, oldest → newest; the newest signs new
            aliases, every listed key verifies; drop a key to retire its aliases.
        default_policy: the policy of every store without its own.
        clock: the time source (default: the system's UTC clock).
        index_key: the secret of the blind indexes stores are keyed by; set it
            once and never change it (see :mod:`ct_alias.blind_index`).

    A tracker is safe to share between threads.
    """

    def __init__(
        self,
        *,
        store: AliasStore,
        keys: Iterable[str | bytes] | str | bytes,
        default_policy: Policy,
        clock: Clock | None = None,
        index_key: str | bytes | None = None,
    ) -> None:
        if not isinstance(default_policy, Policy):
            raise ConfigurationError("default_policy must be a Policy")
        self._store = store
        self._codec = AliasCodec(keys)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._index = BlindIndex(index_key)
        self._lock = threading.Lock()
        self._config = self._configure(default_policy, {})

    def __repr__(self) -> str:
        return (
            f"<Tracker store={self._store!r} keys={self._codec.key_count} "
            f"domains={sorted(self._config.domains)}>"
        )

    # -- configuration -----------------------------------------------------

    @property
    def store(self) -> AliasStore:
        """The storage backend."""
        return self._store

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
            StorageError: the store failed; nothing was half-written.
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
            candidate = Alias(
                address=alias_address,
                real_address=real.address,
                conversation=conversation,
                store=store,
                role=role,
                strategy=strategy,
                created_at=now,
                expires_at=expires_at,
                key=self._index.alias_key(alias_address),
                slot=slot,
            )
            try:
                alias, created = self._store.get_or_create(candidate, now=now)
            except AliasCollision:
                logger.warning("alias collision in store %r; retrying with a new token", store)
                continue
            if created:
                logger.debug("issued %s alias for conversation %r", strategy, conversation)
            return alias
        raise AliasCollision()

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
                    return Verified(canonical, token, strategy.name)
        raise damaged or MalformedAlias(alias, "not under one of this tracker's alias domains")

    def unmask(self, alias: str, *, reason: str | None = None) -> Alias:
        """Return the :class:`Alias` record behind an alias address (any case).

        Forged, malformed and expired aliases are refused from the alias text
        alone, without any storage call.

        Args:
            alias: the alias address.
            reason: why the real address is needed (kept for the audit trail).

        Raises:
            MalformedAlias: not one of this tracker's aliases at all.
            ForgedAlias: its signature does not verify with any current key.
            ExpiredAlias: its time to live or grace period is over.
            RevokedAlias: it was revoked.
            UnknownAlias: correctly signed, but not in storage.
            StorageError: the store failed.
        """
        verified = self.verify(alias)
        now = self._clock.now()
        expires_at = verified.token.expires_at
        if now >= expires_at:
            raise ExpiredAlias(verified.address, expires_at, ExpiryReason.TTL)
        record = self._store.get(self._index.alias_key(verified.address))
        if record is None:
            raise UnknownAlias(verified.address)
        record.check_usable(now)
        del reason  # recorded on the timeline once timelines exist
        return record


def _suffixes(domain: str, known: frozenset[str]) -> list[str]:
    """The known alias domains that ``domain`` is, or is under; longest first."""
    found = []
    rest = domain
    while True:
        if rest in known:
            found.append(rest)
        dot = rest.find(".")
        if dot < 0:
            return found
        rest = rest[dot + 1 :]


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
