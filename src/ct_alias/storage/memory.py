"""An in-memory, thread-safe store, for tests and short-lived processes."""

from __future__ import annotations

import threading
from datetime import datetime

from attrs import evolve

from ..aliases import Alias
from ..errors import AliasCollision

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps aliases in dictionaries guarded by a lock. Nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[str, Alias] = {}
        self._slots: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<MemoryStore with {len(self._aliases)} alias(es)>"

    def __len__(self) -> int:
        return len(self._aliases)

    def get_or_create(self, candidate: Alias, *, now: datetime) -> tuple[Alias, bool]:
        """See :meth:`AliasStore.get_or_create`."""
        slot = candidate.slot
        if slot is None:
            raise ValueError("a candidate alias needs a slot")
        with self._lock:
            key = self._slots.get(slot)
            if key is not None:
                current = self._aliases[key]
                if current.usable_at(now):
                    return current, False
                self._aliases[key] = evolve(current, slot=None)
                del self._slots[slot]
            if candidate.key in self._aliases:
                raise AliasCollision()
            self._aliases[candidate.key] = candidate
            self._slots[slot] = candidate.key
            return candidate, True

    def get(self, key: str) -> Alias | None:
        """See :meth:`AliasStore.get`."""
        return self._aliases.get(key)
