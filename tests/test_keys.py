"""Every key is at least 128 bits: a key id, a blind index or a signature confirms a guess.

Issue #15: one-character signing, index and address keys worked, and a small
dictionary recovered a documentation key from its key id. Short keys are now
refused with a ``ConfigurationError`` that says how to make a good one.
"""

from __future__ import annotations

import secrets

import pytest

from ct_alias import Policy, Tracker
from ct_alias.blind_index import BlindIndex
from ct_alias.codec import AliasCodec
from ct_alias.crypto import AddressCipher
from ct_alias.errors import ConfigurationError
from ct_alias.storage import MemoryStorage

#: Made with `ct-alias keys generate` (a public test key: never use it).
GOOD = "rM4n8Vq1Zx6Lc3Bw9Kd2Hf5Tg7Jy0Sp4Ae1Uo8Ir3N"


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("signing key", lambda key: AliasCodec([GOOD, key])),
        ("index key", BlindIndex),
        ("address key", lambda key: AddressCipher([key, GOOD])),
        (
            "signing key",
            lambda key: Tracker(
                storage=MemoryStorage(),
                keys=[key],
                default_policy=Policy(domain="ct.example.com"),
                index_key=GOOD,
            ),
        ),
    ],
)
@pytest.mark.parametrize("short", ["k", "x" * 15, b"\x00" * 15, "ção-chave"])
def test_keys_under_128_bits_are_refused(kind: str, make: object, short: str | bytes) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(short)  # type: ignore[operator]
    message = str(info.value)
    assert kind in message
    assert "ct-alias keys generate" in message
    if isinstance(short, str) and len(short) > 3:
        assert short not in message  # a key never appears in an error


@pytest.mark.parametrize("key", ["x" * 16, b"\x01" * 16, "ção-chave-longa", GOOD])
def test_keys_of_128_bits_are_taken(key: str | bytes) -> None:
    AliasCodec([key])
    BlindIndex(key)
    AddressCipher([key])


def test_generated_keys_are_strong_enough() -> None:
    """What `ct-alias keys generate` prints (``secrets.token_urlsafe(32)``): 256 bits."""
    assert len(secrets.token_urlsafe(32).encode()) >= 43
