from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ct_alias import AliasCodec, ConfigurationError, ForgedAlias, MalformedAlias, TokenFormat
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1

EXPIRES = datetime(2026, 3, 2, 12, 30, 5, tzinfo=UTC)


@pytest.fixture
def codec() -> AliasCodec:
    return AliasCodec(["k1", "k2"])


def test_lengths_and_alphabet(codec: AliasCodec) -> None:
    assert COMPLEX_V1.length == 40
    assert SIMPLE_V1.length == 24
    for fmt in (COMPLEX_V1, SIMPLE_V1):
        text = codec.encode(fmt, EXPIRES)
        assert len(text) == fmt.length
        assert re.fullmatch(r"[0-9a-v]+", text)
        assert text[0] == fmt.marker == str(fmt.version)


def test_round_trip_carries_expiry_and_id(codec: AliasCodec) -> None:
    text = codec.encode(COMPLEX_V1, EXPIRES, token_id=b"0123456789")
    token = codec.decode(COMPLEX_V1, text)
    assert token.expires_at == EXPIRES
    assert token.id == b"0123456789"
    assert token.text == text
    assert token.format is COMPLEX_V1


def test_expiry_is_truncated_to_whole_seconds(codec: AliasCodec) -> None:
    token = codec.decode(COMPLEX_V1, codec.encode(COMPLEX_V1, EXPIRES.replace(microsecond=999)))
    assert token.expires_at == EXPIRES


def test_decode_is_case_insensitive(codec: AliasCodec) -> None:
    text = codec.encode(SIMPLE_V1, EXPIRES, bind=b"x")
    assert codec.decode(SIMPLE_V1, text.upper(), bind=b"x").text == text


def test_binding_is_checked(codec: AliasCodec) -> None:
    text = codec.encode(SIMPLE_V1, EXPIRES, bind=b"maria@example.com")
    with pytest.raises(ForgedAlias):
        codec.decode(SIMPLE_V1, text, bind=b"mario@example.com")


def test_formats_are_not_interchangeable(codec: AliasCodec) -> None:
    text = codec.encode(SIMPLE_V1, EXPIRES)
    with pytest.raises(MalformedAlias):
        codec.decode(COMPLEX_V1, text)


def test_wrong_version_byte_is_malformed(codec: AliasCodec) -> None:
    other = TokenFormat(version=9, id_size=10, mac_size=10)
    text = codec.encode(other, EXPIRES)
    with pytest.raises(MalformedAlias, match="unknown token format '9'"):
        codec.decode(COMPLEX_V1, text)


def test_rotation_old_keys_verify_newest_signs() -> None:
    old = AliasCodec(["k1"])
    rotated = AliasCodec(["k1", "k2"])
    retired = AliasCodec(["k2"])
    text = old.encode(COMPLEX_V1, EXPIRES)
    assert rotated.decode(COMPLEX_V1, text).expires_at == EXPIRES
    with pytest.raises(ForgedAlias):
        retired.decode(COMPLEX_V1, text)
    fresh = rotated.encode(COMPLEX_V1, EXPIRES)
    assert retired.decode(COMPLEX_V1, fresh).expires_at == EXPIRES
    with pytest.raises(ForgedAlias):
        old.decode(COMPLEX_V1, fresh)


def test_salt_separates_uses() -> None:
    text = AliasCodec(["k"]).encode(COMPLEX_V1, EXPIRES)
    with pytest.raises(ForgedAlias):
        AliasCodec(["k"], salt=b"other").decode(COMPLEX_V1, text)


@pytest.mark.parametrize("keys", [[], [""], [b""], [None], [1]])
def test_bad_keys(keys: list[object]) -> None:
    with pytest.raises(ConfigurationError):
        AliasCodec(keys)  # type: ignore[arg-type]


def test_single_string_key_is_one_key() -> None:
    assert AliasCodec("secret").key_count == 1


def test_repr_hides_keys() -> None:
    assert "topsecret" not in repr(AliasCodec(["topsecret"]))


@pytest.mark.parametrize(
    ("version", "id_size", "mac_size"),
    [(32, 10, 10), (0, 10, 10), (1, 0, 14), (1, 10, 3), (1, 10, 33), (1, 10, 11)],
)
def test_bad_formats(version: int, id_size: int, mac_size: int) -> None:
    with pytest.raises(ConfigurationError):
        TokenFormat(version=version, id_size=id_size, mac_size=mac_size)


@pytest.mark.parametrize(
    "when", [datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 2, 8, tzinfo=UTC)]
)
def test_expiry_out_of_range(codec: AliasCodec, when: datetime) -> None:
    with pytest.raises(ConfigurationError):
        codec.encode(COMPLEX_V1, when)


def test_wrong_id_size(codec: AliasCodec) -> None:
    with pytest.raises(ConfigurationError):
        codec.encode(COMPLEX_V1, EXPIRES, token_id=b"short")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1" * 39,
        "1" * 41,
        "w" * 40,
        "!" * 40,
        "é" * 40,
        "1" * 39 + "_",
        " " + "1" * 39,
        "1" + "v" * 39,
        "-" + "1" * 39,
    ],
)
def test_malformed_text(codec: AliasCodec, text: str) -> None:
    with pytest.raises(MalformedAlias):
        codec.decode(COMPLEX_V1, text)


def test_every_single_character_change_is_rejected(codec: AliasCodec) -> None:
    text = codec.encode(COMPLEX_V1, EXPIRES, bind=b"d")
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    for i, original in enumerate(text):
        for c in alphabet:
            if c == original:
                continue
            with pytest.raises((ForgedAlias, MalformedAlias)):
                codec.decode(COMPLEX_V1, text[:i] + c + text[i + 1 :], bind=b"d")


def test_a_million_tokens_do_not_collide(codec: AliasCodec) -> None:
    encode = codec.encode
    tokens = {encode(COMPLEX_V1, EXPIRES) for _ in range(1_000_000)}
    assert len(tokens) == 1_000_000


@given(
    expires=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    bind=st.binary(max_size=300),
    token_id=st.binary(min_size=4, max_size=4),
)
def test_round_trip_property(expires: datetime, bind: bytes, token_id: bytes) -> None:
    codec = AliasCodec(["a", "b", "c"])
    text = codec.encode(SIMPLE_V1, expires, bind=bind, token_id=token_id)
    token = codec.decode(SIMPLE_V1, text.swapcase(), bind=bind)
    assert token.id == token_id
    assert token.expires_at == expires - timedelta(microseconds=expires.microsecond)
