"""A registry of named factories, extended by functions and entry points.

Strategies and storage URL schemes both use it: an explicit ``register`` call,
or an entry point in the named group, loaded once on the first miss.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigurationError

__all__ = ["Registry"]

F = TypeVar("F")


class Registry(Generic[F]):
    """Factories by name, thread-safe.

    Args:
        kind: what a name names, for messages ("alias strategy").
        pattern: what a valid name looks like.
        rule: ``pattern`` in words, for messages.
        group: the entry-point group scanned on the first unknown name.
        builtins: the factories known from the start.
    """

    def __init__(
        self, *, kind: str, pattern: str, rule: str, group: str, builtins: Mapping[str, F]
    ) -> None:
        self._kind = kind
        self._pattern = re.compile(pattern)
        self._rule = rule
        self._group = group
        self._lock = threading.Lock()
        self._factories: dict[str, F] = dict(builtins)
        self._entry_points_loaded = False

    def register(self, name: str, factory: F, *, replace: bool) -> None:
        """Add (or with ``replace``, replace) the factory of ``name``.

        Raises:
            ConfigurationError: a bad name, a non-callable factory, or the name is taken.
        """
        if not isinstance(name, str) or not self._pattern.fullmatch(name):
            raise ConfigurationError(f"a {self._kind} name is {self._rule}: {name!r}")
        if not callable(factory):
            raise ConfigurationError(f"the factory for {self._kind} {name!r} is not callable")
        with self._lock:
            if name in self._factories and not replace:
                raise ConfigurationError(
                    f"a {self._kind} {name!r} is already registered (pass replace=True)"
                )
            self._factories[name] = factory

    def get(self, name: str) -> F:
        """The factory of ``name``, looking at entry points if it is not known yet.

        Raises:
            ConfigurationError: no factory has that name, or its entry point is broken.
        """
        with self._lock:
            factory = self._factories.get(name)
        if factory is None:
            self._load_entry_points()
            with self._lock:
                factory = self._factories.get(name)
        if factory is None:
            raise ConfigurationError(
                f"unknown {self._kind} {name!r}; known: {', '.join(self.names())}"
            )
        return factory

    def names(self) -> list[str]:
        """The names known so far, sorted."""
        with self._lock:
            return sorted(self._factories)

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
        for point in entry_points(group=self._group):
            try:
                factory = point.load()
            except (ImportError, AttributeError) as exc:
                raise ConfigurationError(
                    f"cannot load {self._kind} {point.name!r} from {point.value!r}: {exc}"
                ) from exc
            with self._lock:
                self._factories.setdefault(point.name, factory)
