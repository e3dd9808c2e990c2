"""Random bytes from the operating system, read ahead in blocks.

Every new alias needs a dozen random bytes for its token id. ``os.urandom``
is one ``getrandom`` system call each time, which on a virtual machine costs
as much as the rest of the token; reading 4 KiB at a time makes it one call
per few hundred tokens. The bytes are the kernel's CSPRNG output all the
same; they are only handed out later.

Two things must never happen, and do not:

* two threads get the same bytes: a lock guards the buffer;
* a forked child hands out what its parent also hands out (both would hold
  the same buffer): the child drops the buffer, and the lock a parent's
  thread may have held, before it runs anything (``os.register_at_fork``).
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes"]

#: How many bytes one system call reads ahead.
BLOCK = 4096


class _ReadAhead:
    """``os.urandom`` in slices of one block, thread-safe and fork-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0

    def take(self, size: int) -> bytes:
        """``size`` fresh random bytes, never handed out before in any process."""
        if size > BLOCK:
            return os.urandom(size)
        with self._lock:
            start = self._used
            if start + size > len(self._block):
                self._block = os.urandom(BLOCK)
                start = 0
            self._used = start + size
            return self._block[start : start + size]

    def forget(self) -> None:
        """Drop the block read ahead (and a lock held across a fork): called in a forked child."""
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0


_read_ahead = _ReadAhead()
os.register_at_fork(after_in_child=_read_ahead.forget)

#: ``size`` fresh random bytes from the operating system's CSPRNG.
random_bytes = _read_ahead.take
