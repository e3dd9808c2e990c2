"""Key strength: every secret ct_alias is given must be at least 128 bits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .errors import ConfigurationError

__all__ = ["MIN_KEY_BYTES", "check_key_strength"]

#: The shortest key accepted, in bytes (128 bits).
MIN_KEY_BYTES: Final = 16


def check_key_strength(kind: str, keys: Iterable[str | bytes]) -> None:
    """Refuse keys shorter than 128 bits (16 bytes of text or bytes).

    A key id, a blind index or an alias signature is a function of its key,
    so each can confirm a guessed key: only the key's strength makes guessing
    hopeless.

    Raises:
        ConfigurationError: a key is shorter than :data:`MIN_KEY_BYTES`.
    """
    for key in keys:
        size = len(key.encode("utf-8")) if isinstance(key, str) else len(key)
        if size < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"{kind} too short: {size} bytes, at least {MIN_KEY_BYTES} (128 bits) are "
                "needed; make one with `ct-alias keys generate`"
            )
