"""Storage backends for aliases (and, later, timelines).

``AliasStore`` is the protocol; ``MemoryStore`` keeps everything in memory.
"""

from __future__ import annotations

from .base import AliasStore
from .memory import MemoryStore

__all__ = ["AliasStore", "MemoryStore"]
