"""Old names kept for one release, each warning when it is used.

A module lists its renamed names and gets a module ``__getattr__`` that
answers the old name with the new object and a :class:`DeprecationWarning`::

    __getattr__ = renamed(__name__, {"MemoryStore": "MemoryStorage"}, globals())
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["renamed"]


def renamed(
    module: str, names: Mapping[str, str], namespace: Mapping[str, Any], *, stacklevel: int = 2
) -> Callable[[str], Any]:
    """A module ``__getattr__`` answering each old name in ``names`` with its new object.

    Args:
        module: the module's ``__name__`` (for messages).
        names: old name → new name, both in the module.
        namespace: the module's ``globals()``.
        stacklevel: of the warning: 2 when the result is the module's
            ``__getattr__``, 3 when that calls it.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - a module __getattr__
        new = names.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated: use {module}.{new} "
            "(the backend is *storage*; a *store* is a shop)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return namespace[new] if new in namespace else _late(module, new)

    return __getattr__


def _late(module: str, name: str) -> Any:
    """A name the module loads lazily (through its own ``__getattr__``)."""
    import sys  # noqa: PLC0415

    return getattr(sys.modules[module], name)
