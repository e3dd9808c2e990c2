"""The tracker's policy set: every store's policy and the strategies they use, frozen.

A :class:`PolicySet` never changes; :meth:`PolicySet.with_policy` returns a
new one, which the tracker swaps in whole, so a call reads one consistent
snapshot without a lock. It also answers what depends only on the policies:
which strategy makes an alias, and which strategy reads one back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from attrs import field, frozen

from .addresses import RealAddress
from .codec import COMPLEX_V1, AliasCodec, Token
from .errors import ConfigurationError, ForgedAlias, MalformedAlias, UnrepresentableAddress
from .policy import Fallback, Policy
from .strategies import AliasStrategy, ComplexStrategy, strategy_factory
from .vocabulary import MAX_ADDRESS

__all__ = ["PolicySet", "Verified"]


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


@frozen(eq=False)
class PolicySet:
    """The default policy, the per-store ones, their strategies and alias domains.

    Build it with :meth:`build`; change it with :meth:`with_policy`.

    Attributes:
        default: the policy of every store without its own.
        policies: the per-store policies, by store name.
        strategies: every strategy the policies name (and the two built-in ones).
        domains: every alias domain of the policies.
    """

    default: Policy
    policies: Mapping[str, Policy]
    strategies: Mapping[str, AliasStrategy]
    domains: frozenset[str]
    _codec: AliasCodec = field(repr=False, alias="codec")
    #: Each domain's binding bytes for complex tokens, when the complex strategy is the
    #: built-in one made with ``codec`` (else empty): what :meth:`expiry` verifies with.
    _complex_binds: Mapping[str, bytes] = field(
        repr=False, alias="complex_binds", factory=lambda: MappingProxyType({})
    )

    @classmethod
    def build(
        cls, codec: AliasCodec, default: Policy, policies: Mapping[str, Policy] | None = None
    ) -> PolicySet:
        """The policy set of ``default`` and ``policies``, with strategies signing with ``codec``.

        Raises:
            ConfigurationError: a policy names an unknown strategy, or its factory
                built a strategy with another name.
        """
        policies = dict(policies or {})
        strategies: dict[str, AliasStrategy] = {}
        builtin_complex = False
        for name in (
            "complex",
            "simple",
            default.strategy,
            *(p.strategy for p in policies.values()),
        ):
            if name not in strategies:
                factory = strategy_factory(name)
                strategy = factory(codec)
                if name == ComplexStrategy.name:
                    builtin_complex = factory is ComplexStrategy
                if getattr(strategy, "name", None) != name:
                    raise ConfigurationError(
                        f"the factory of strategy {name!r} built one named "
                        f"{getattr(strategy, 'name', None)!r}"
                    )
                strategies[name] = strategy
        domains = frozenset({default.domain, *(p.domain for p in policies.values())})
        binds = {d: d.encode("ascii") for d in domains} if builtin_complex else {}
        return cls(
            default,
            MappingProxyType(policies),
            MappingProxyType(strategies),
            domains,
            codec=codec,
            complex_binds=MappingProxyType(binds),
        )

    def with_policy(self, store: str, policy: Policy) -> PolicySet:
        """A new set in which ``store`` has ``policy`` (replacing any earlier one)."""
        return PolicySet.build(self._codec, self.default, {**self.policies, store: policy})

    def policy_for(self, store: str) -> Policy:
        """The policy that applies to ``store``."""
        return self.policies.get(store, self.default)

    def make(self, policy: Policy, real: RealAddress, expires_at: datetime) -> tuple[str, str]:
        """A new alias of ``real`` under ``policy``: (strategy name, lower-case address).

        Falls back to the complex strategy when the policy's cannot represent
        the address and the policy allows it.

        Raises:
            UnrepresentableAddress: no fallback allowed.
            ConfigurationError: a strategy made something that is not an alias.
        """
        strategy = self.strategies[policy.strategy]
        if type(strategy) is ComplexStrategy:
            # every address is representable, and the alias is lower-case ASCII already
            return strategy.name, strategy.make(real, domain=policy.domain, expires_at=expires_at)
        try:
            address = strategy.make(real, domain=policy.domain, expires_at=expires_at)
        except UnrepresentableAddress:
            if policy.on_unrepresentable is Fallback.ERROR or strategy.name == ComplexStrategy.name:
                raise
            strategy = self.strategies[ComplexStrategy.name]
            address = strategy.make(real, domain=policy.domain, expires_at=expires_at)
        if not isinstance(address, str) or len(address) > MAX_ADDRESS or not address.isascii():
            raise ConfigurationError(f"strategy {strategy.name!r} made an invalid alias")
        return strategy.name, address.lower()

    def read(self, alias: object) -> tuple[str, Token, str]:
        """Verify an alias: (canonical address, token, strategy name).

        Raises:
            MalformedAlias: not an alias under one of the domains at all.
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
            raise MalformedAlias(
                alias, f"not a printable ASCII address of at most {MAX_ADDRESS} characters"
            )
        canonical = alias.lower()
        local, at, domain = canonical.rpartition("@")
        if not at or not local or not domain:
            raise MalformedAlias(alias, "no local part, '@' and domain")
        damaged: MalformedAlias | None = None
        for alias_domain in _suffixes(domain, self.domains):
            for strategy in self.strategies.values():
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

    def expiry(self, alias: object) -> tuple[str, datetime]:
        """:meth:`read`, returning (canonical address, expiry) only.

        A complex alias under exactly one of the domains, while the complex
        strategy is the built-in one, is verified by the codec straight away,
        without building a :class:`Token`; anything else goes through
        :meth:`read`, which gives the same answer and the same errors.

        Raises:
            MalformedAlias: not an alias under one of the domains at all.
            ForgedAlias: its signature does not verify with any current key.
        """
        if isinstance(alias, str) and len(alias) <= MAX_ADDRESS and alias.isascii():
            canonical = alias.lower()
            local, _, domain = canonical.rpartition("@")
            # read() would try the complex strategy under this very domain first, and
            # ComplexStrategy.read verifies the token bound to the domain. (A token is
            # letters and digits, and an alias domain printable: what read() checks of
            # the whole address holds once the token verifies.)
            bind = self._complex_binds.get(domain)
            if bind is not None and local:
                try:
                    return canonical, self._codec.expiry(COMPLEX_V1, local, bind=bind)
                except MalformedAlias:
                    pass  # read() goes on with the other strategies and domains
                except ForgedAlias:
                    raise ForgedAlias(canonical) from None
        canonical, token, _ = self.read(alias)
        return canonical, token.expires_at

    def owns(self, address: object) -> bool:
        """Whether ``address`` is under one of the alias domains (any case)."""
        if not isinstance(address, str):
            return False
        domain = address.rpartition("@")[2].lower()
        return bool(domain) and bool(_suffixes(domain, self.domains))


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
