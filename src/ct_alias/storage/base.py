"""The storage protocol: the few operations the tracker needs from a backend."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from ..aliases import Alias

__all__ = ["AliasStore"]


@runtime_checkable
class AliasStore(Protocol):
    """Where aliases live. Implementations must be safe to share between threads.

    Records are keyed by :attr:`Alias.key` (a keyed hash of the alias
    address) and, while current, by :attr:`Alias.slot` (a keyed hash of store,
    conversation, role and real address); a store never needs the plaintext of
    either. :attr:`Alias.real_address` is opaque text to a store (it may be
    sealed by the tracker). ``ct_alias.testing.StorageContract`` checks an
    implementation's behaviour.
    """

    def get_or_create(self, candidate: Alias, *, now: datetime) -> tuple[Alias, bool]:
        """Atomically return the alias in ``candidate.slot``, or store ``candidate``.

        If the slot holds an alias that is usable at ``now``
        (:meth:`Alias.usable_at`), return it and ``False``. Otherwise retire the
        old one from the slot (its ``slot`` becomes ``None``; the record stays),
        store ``candidate`` and return it and ``True``. Concurrent calls for one
        slot must all return the same alias.

        Raises:
            AliasCollision: ``candidate.key`` is already taken by another record.
            StorageError: the backend failed; nothing was written.
        """
        ...

    def get(self, key: str) -> Alias | None:
        """Return the alias whose :attr:`Alias.key` is ``key``, or ``None``.

        Raises:
            StorageError: the backend failed.
        """
        ...
