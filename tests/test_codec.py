from __future__ import annotations

import hmac
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ct_alias import AliasCodec, ConfigurationError, ForgedAlias, MalformedAlias, TokenFormat
from ct_alias import codec as codec_module
from ct_alias.codec import COMPLEX_V1, SIMPLE_V1

EXPIRES = datetime(2026, 3, 2, 12, 30, 5, tzinfo=UTC)
KEY = "vBtwSxoVVB5A928j8qqagnC5JLrtRBEQmcJMqGVXqIA"  # secrets.token_urlsafe(32)


@pytest.fixture
def codec() -> AliasCodec:
    return AliasCodec(
        [
            "FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM",
            "PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M",
        ]
    )


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
    old = AliasCodec(["FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM"])
    rotated = AliasCodec(
        [
            "FogYWTXYiOd6FlwwIQkTUzr7iQ9RFBFOqDbssUWoQGM",
            "PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M",
        ]
    )
    retired = AliasCodec(["PP-cT8BtUYtWH6ZhESMm3oP9uFMk3e7rIcjdGVN4S0M"])
    text = old.encode(COMPLEX_V1, EXPIRES)
    assert rotated.decode(COMPLEX_V1, text).expires_at == EXPIRES
    with pytest.raises(ForgedAlias):
        retired.decode(COMPLEX_V1, text)
    fresh = rotated.encode(COMPLEX_V1, EXPIRES)
    assert retired.decode(COMPLEX_V1, fresh).expires_at == EXPIRES
    with pytest.raises(ForgedAlias):
        old.decode(COMPLEX_V1, fresh)


def test_salt_separates_uses() -> None:
    text = AliasCodec(["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"]).encode(COMPLEX_V1, EXPIRES)
    with pytest.raises(ForgedAlias):
        AliasCodec(["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"], salt=b"other").decode(
            COMPLEX_V1, text
        )


@pytest.mark.parametrize("keys", [[], [""], [b""], [None], [1]])
def test_bad_keys(keys: list[object]) -> None:
    with pytest.raises(ConfigurationError):
        AliasCodec(keys)  # type: ignore[arg-type]


def test_single_string_key_is_one_key() -> None:
    assert AliasCodec("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k").key_count == 1


def test_repr_hides_keys() -> None:
    assert "topsecret" not in repr(AliasCodec(["YciN_9HPeCrdaNK4pusQwqkU6Kds897mJjVf3PDgxHg"]))


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


@pytest.mark.slow
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
    codec = AliasCodec(
        [
            "u4UiKEngsn3VCBgvQFpzbLb-IFfkgWMtG0Fa9xPAzYo",
            "jDq3Y3lPSGGD9p7RM6uh-_peGVTjLHLz28vJ-mQUgiE",
            "GvAqgl8FfwmkfAFyxNkGUIr_8L4HF6obdjaR1dO50mE",
        ]
    )
    text = codec.encode(SIMPLE_V1, expires, bind=bind, token_id=token_id)
    token = codec.decode(SIMPLE_V1, text.swapcase(), bind=bind)
    assert token.id == token_id
    assert token.expires_at == expires - timedelta(microseconds=expires.microsecond)


# -- one rule at a time --------------------------------------------------------------
# Each bad format breaks exactly one rule (its size is a multiple of 5 bytes unless
# that is the rule broken), and each good one sits exactly on a rule's boundary, so
# weakening or tightening any single check is noticed.


@pytest.mark.parametrize(
    ("version", "id_size", "mac_size", "rule"),
    [
        (0, 5, 5, "version"),
        (32, 5, 5, "version"),
        (-1, 5, 5, "version"),
        (1, 0, 10, "an id and a MAC"),
        (1, 7, 3, "an id and a MAC"),  # a 24-bit MAC
        (1, 2, 33, "longer than SHA-256"),
        (1, 6, 5, "multiple of 5"),  # 16 bytes
    ],
)
def test_each_format_rule_alone(version: int, id_size: int, mac_size: int, rule: str) -> None:
    with pytest.raises(ConfigurationError, match=rule):
        TokenFormat(version=version, id_size=id_size, mac_size=mac_size)


@pytest.mark.parametrize(
    ("version", "id_size", "mac_size"),
    [
        (1, 5, 5),  # the lowest version
        (31, 5, 5),  # the highest version
        (20, 1, 9),  # a one-byte id
        (20, 6, 4),  # a 4-byte MAC, the shortest allowed
        (20, 3, 32),  # all of SHA-256: 1 + 3 + 4 + 32 = 40 bytes
    ],
)
def test_formats_exactly_on_each_boundary_work(version: int, id_size: int, mac_size: int) -> None:
    fmt = TokenFormat(version=version, id_size=id_size, mac_size=mac_size, name="edge")
    codec = AliasCodec([KEY])
    text = codec.encode(fmt, EXPIRES, token_id=bytes(range(id_size)))
    assert len(text) == fmt.length == fmt.size * 8 // 5
    assert type(fmt.length) is int  # a public attribute: "x" * fmt.length must work
    assert fmt.size == 1 + id_size + 4 + mac_size
    assert text[0] == fmt.marker == "0123456789abcdefghijklmnopqrstuv"[version]
    token = codec.decode(fmt, text)
    assert (token.id, token.expires_at) == (bytes(range(id_size)), EXPIRES)


# -- decoding refuses what only looks like a token ------------------------------------


@pytest.mark.parametrize(
    "digit",
    [
        "\uff10",  # FULLWIDTH DIGIT ZERO: int(..., 32) would read it as 0
        "\u0660",  # ARABIC-INDIC DIGIT ZERO
        "\U0001d7ce",  # MATHEMATICAL BOLD DIGIT ZERO
    ],
)
def test_decode_refuses_a_non_ascii_digit(digit: str) -> None:
    codec = AliasCodec([KEY])
    text = codec.encode(COMPLEX_V1, EXPIRES, bind=b"d", token_id=bytes(10))
    assert text[1] == "0"
    lookalike = text[0] + digit + text[2:]
    assert int(lookalike, 32) == int(text, 32)  # Python would decode it to the same token
    with pytest.raises(MalformedAlias):
        codec.decode(COMPLEX_V1, lookalike, bind=b"d")


def test_decode_refuses_low_bits_in_the_version_byte() -> None:
    """Only ``version·8`` is a valid first byte: a set low bit is damage, not forgery."""
    codec = AliasCodec([KEY])
    text = codec.encode(COMPLEX_V1, EXPIRES, bind=b"d", token_id=bytes(10))
    for second in "4v":  # the top three bits of the second character are the low bits
        with pytest.raises(MalformedAlias):
            codec.decode(COMPLEX_V1, text[0] + second + text[2:], bind=b"d")


def test_decode_refuses_letters_after_v() -> None:
    codec = AliasCodec([KEY])
    text = codec.encode(COMPLEX_V1, EXPIRES, bind=b"d", token_id=bytes(10))
    with pytest.raises(MalformedAlias):
        codec.decode(COMPLEX_V1, text[:-1] + "w", bind=b"d")


@pytest.mark.parametrize(
    "when",
    [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime.fromtimestamp(2**32 - 1, UTC)],
)
def test_expiry_range_edges_encode(when: datetime) -> None:
    codec = AliasCodec([KEY])
    assert codec.decode(COMPLEX_V1, codec.encode(COMPLEX_V1, when)).expires_at == when


@pytest.mark.parametrize(
    "when", [datetime(1970, 1, 1, tzinfo=UTC), datetime.fromtimestamp(2**32, UTC)]
)
def test_expiry_one_past_the_range_is_refused(when: datetime) -> None:
    with pytest.raises(ConfigurationError, match="cannot be encoded"):
        AliasCodec([KEY]).encode(COMPLEX_V1, when)


def test_the_hmac_pads_compute_hmac_sha256() -> None:
    # The codec keeps SHA-256 states of each key's pads (RFC 2104) instead of hmac objects.
    for size in (16, 32, 64, 65, 200):
        key = os.urandom(size)
        for message in (b"", b"x", os.urandom(29), os.urandom(200)):
            inner, outer = codec_module._hmac_pads(key)  # noqa: SLF001 - pinned against hmac
            inner = inner.copy()
            inner.update(message)
            outer = outer.copy()
            outer.update(inner.digest())
            assert outer.digest() == hmac.digest(key, message, "sha256")


def test_base32_spreading_matches_the_bit_by_bit_definition() -> None:
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    for size in (5, 10, 15, 20, 25, 30, 35, 40, 60, 100):
        for raw in (bytes(size), b"\xff" * size, os.urandom(size), os.urandom(size)):
            number = int.from_bytes(raw, "big")
            expected = "".join(
                alphabet[(number >> shift) & 31] for shift in range(size * 8 - 5, -1, -5)
            )
            assert codec_module._b32(raw) == expected  # noqa: SLF001 - pinned bit by bit
