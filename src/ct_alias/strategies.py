"""Alias strategies: how a token and a real address become an alias address.

Two strategies ship with ct_alias, matching a store's "mask type":

``complex`` (the default)
    ``<token>@<alias-domain>``: an opaque 40-character token that reveals
    nothing of the real address.

``simple``
    ``<local>@<real-domain>-<tag>.<alias-domain>``: readable, with the real
    address still visible and a 24-character signed tag that links it to its
    conversation. The tag is bound to the visible address, so nobody can
    mint a working alias for an address the tracker never masked. The grammar
    is parsed from the right, so hyphens, digits and many labels in the real
    domain never confuse it.

Hosts add their own with :func:`register_strategy` or the
``ct_alias.strategies`` entry-point group; a strategy is built per tracker
by a factory that receives the tracker's :class:`~ct_alias.codec.AliasCodec`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._registry import Registry
from .addresses import RealAddress
from .codec import COMPLEX_V1, SIMPLE_V1, AliasCodec, Token
from .errors import MalformedAlias, UnrepresentableAddress
from .vocabulary import MAX_ADDRESS, MAX_LABEL, MAX_LOCAL

__all__ = [
    "AliasStrategy",
    "ComplexStrategy",
    "SimpleStrategy",
    "StrategyFactory",
    "available_strategies",
    "register_strategy",
    "strategy_factory",
]


ENTRY_POINT_GROUP = "ct_alias.strategies"


@runtime_checkable
class AliasStrategy(Protocol):
    """How one kind of alias is built and read back.

    Both methods work on canonical (lower-case, ASCII) text; the tracker
    lower-cases what it is given before calling :meth:`read`.
    """

    #: The name a :class:`~ct_alias.Policy` uses to choose this strategy.
    name: str

    def make(self, real: RealAddress, *, domain: str, expires_at: datetime) -> str:
        """Return a new alias address for ``real`` under the alias ``domain``.

        Raises:
            UnrepresentableAddress: this strategy cannot represent ``real``
                (the tracker then falls back as its policy says).
        """
        ...

    def read(self, local: str, domain: str, *, alias_domain: str) -> Token | None:
        """Verify an alias (split at its last ``@``) issued under ``alias_domain``.

        Returns:
            The verified token (whose expiry the tracker checks), or ``None``
            when the alias is not of this strategy's shape at all.

        Raises:
            MalformedAlias: it has this strategy's shape but is damaged.
            ForgedAlias: its signature does not verify.
        """
        ...


StrategyFactory = Callable[[AliasCodec], AliasStrategy]
"""Builds a strategy from the tracker's codec (which holds the signing keys)."""


class ComplexStrategy:
    """``<token>@<alias-domain>``: opaque; the token is bound to the alias domain."""

    name = "complex"

    def __init__(self, codec: AliasCodec) -> None:
        self._codec = codec

    def make(self, real: RealAddress, *, domain: str, expires_at: datetime) -> str:
        """Return ``<token>@<domain>``; every valid address is representable."""
        del real  # nothing of the real address goes into a complex alias
        token = self._codec.encode(COMPLEX_V1, expires_at, bind=domain.encode("ascii"))
        return f"{token}@{domain}"

    def read(self, local: str, domain: str, *, alias_domain: str) -> Token | None:
        """Verify ``local`` as a token when ``domain`` is exactly the alias domain."""
        if domain != alias_domain:
            return None
        return self._codec.decode(COMPLEX_V1, local, bind=domain.encode("ascii"))

    def expiry(self, local: str, domain: str) -> datetime:
        """:meth:`read` for an alias under exactly ``domain``, returning only its expiry.

        Raises:
            MalformedAlias: ``local`` is not a complex token.
            ForgedAlias: its signature does not verify.
        """
        return self._codec.expiry(COMPLEX_V1, local, bind=domain.encode("ascii"))

    def __repr__(self) -> str:
        return "ComplexStrategy()"


class SimpleStrategy:
    """``<local>@<real-domain>-<tag>.<alias-domain>``: readable, tag bound to the address.

    Addresses with a quoted or non-ASCII local part, a domain literal, or
    whose alias would break an RFC 5321 length limit are unrepresentable.
    """

    name = "simple"

    def __init__(self, codec: AliasCodec) -> None:
        self._codec = codec

    @staticmethod
    def _bind(local: str, real_domain: str, alias_domain: str) -> bytes:
        return f"{local}@{real_domain}\x00{alias_domain}".encode("ascii")

    def make(self, real: RealAddress, *, domain: str, expires_at: datetime) -> str:
        """Return the readable alias, or raise :class:`UnrepresentableAddress`."""
        if real.quoted or real.smtputf8:
            raise UnrepresentableAddress(
                real.address, self.name, "the local part is quoted or not ASCII"
            )
        if real.domain.startswith("["):
            raise UnrepresentableAddress(
                real.address, self.name, "the domain is an address literal"
            )
        local = real.local.lower()
        if len(local) > MAX_LOCAL:  # email-validator only enforces it in strict mode
            raise UnrepresentableAddress(
                real.address, self.name, f"the local part is longer than {MAX_LOCAL} octets"
            )
        last_label = real.domain.rpartition(".")[2]
        if len(last_label) + 1 + SIMPLE_V1.length > MAX_LABEL:
            raise UnrepresentableAddress(
                real.address, self.name, f"the tagged label would exceed {MAX_LABEL} characters"
            )
        alias_domain = f"{real.domain}-{'x' * SIMPLE_V1.length}.{domain}"
        # The local part has at least one octet, so an alias within MAX_ADDRESS
        # has a domain within MAX_DOMAIN (254 - len("x@") = 252 < 253).
        if len(local) + 1 + len(alias_domain) > MAX_ADDRESS:
            raise UnrepresentableAddress(
                real.address, self.name, "the alias would exceed the RFC 5321 length limits"
            )
        tag = self._codec.encode(SIMPLE_V1, expires_at, bind=self._bind(local, real.domain, domain))
        return f"{local}@{real.domain}-{tag}.{domain}"

    def read(self, local: str, domain: str, *, alias_domain: str) -> Token | None:
        """Parse from the right: ``.<alias-domain>``, then ``-<tag>``, then the real domain."""
        suffix = "." + alias_domain
        if not domain.endswith(suffix):
            return None
        real_domain, hyphen, tag = domain[: -len(suffix)].rpartition("-")
        if not hyphen or not real_domain or not local or len(tag) != SIMPLE_V1.length:
            raise MalformedAlias(f"{local}@{domain}", "not a simple alias")
        return self._codec.decode(SIMPLE_V1, tag, bind=self._bind(local, real_domain, alias_domain))

    def __repr__(self) -> str:
        return "SimpleStrategy()"


def _new_registry() -> Registry[StrategyFactory]:
    builtins: dict[str, StrategyFactory] = {
        ComplexStrategy.name: ComplexStrategy,
        SimpleStrategy.name: SimpleStrategy,
    }
    return Registry(
        kind="alias strategy",
        pattern=r"[a-z][a-z0-9_-]{0,31}",
        rule="1-32 lower-case letters, digits, '_' or '-', starting with a letter",
        group=ENTRY_POINT_GROUP,
        builtins=builtins,
    )


_registry = _new_registry()


def register_strategy(name: str, factory: StrategyFactory, *, replace: bool = False) -> None:
    """Make a strategy available to policies under ``name``.

    Args:
        name: 1-32 lower-case letters, digits, ``_`` or ``-``, starting with a letter.
        factory: called with the tracker's :class:`~ct_alias.codec.AliasCodec`,
            returns an :class:`AliasStrategy`.
        replace: allow replacing a strategy already registered under ``name``.

    Raises:
        ConfigurationError: a bad name, a non-callable factory, or the name is taken.
    """
    _registry.register(name, factory, replace=replace)


def strategy_factory(name: str) -> StrategyFactory:
    """Return the factory registered under ``name`` (looking at entry points if needed).

    Raises:
        ConfigurationError: no strategy has that name.
    """
    return _registry.get(name)


def available_strategies() -> list[str]:
    """The names of the strategies registered so far, sorted."""
    return _registry.names()
