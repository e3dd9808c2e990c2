"""Blind indexes: keyed, kept apart per use, unambiguous, and fixed in size.

Each test breaks if one property of :class:`ct_alias.blind_index.BlindIndex`
is lost (the known answers are in ``tests/test_vectors.py``).
"""

from __future__ import annotations

import pytest

from ct_alias import ConfigurationError
from ct_alias.blind_index import BlindIndex

# made with secrets.token_urlsafe(32)
INDEX_KEY = "pU7ZQ6m1xq1W3C1YJv3D1dQJ0uCkq2b8C1nP5Hm6Z0w"
OTHER_KEY = "0xQzFZ2ByFtOZpX7m3mXw4oI3i4C9NfJQd6k2sYv6LU"
ALIAS = "1000000000000000000000000000000000000000@ct.example.com"
SLOT = ("shop-1", "order-1", "customer", "maria@example.com")


def test_the_index_key_changes_every_value() -> None:
    """Someone with the database but not the key cannot recompute an index."""
    mine, other, public = BlindIndex(INDEX_KEY), BlindIndex(OTHER_KEY), BlindIndex()
    assert len({mine.alias_key(ALIAS), other.alias_key(ALIAS), public.alias_key(ALIAS)}) == 3
    assert len({mine.slot_key(*SLOT), other.slot_key(*SLOT), public.slot_key(*SLOT)}) == 3


def test_keyed_says_whether_a_secret_was_given() -> None:
    assert BlindIndex(INDEX_KEY).keyed
    assert not BlindIndex().keyed
    assert not BlindIndex(None).keyed


def test_str_and_utf8_bytes_keys_are_the_same_key() -> None:
    text = BlindIndex("chave-ü-" + INDEX_KEY)
    raw = BlindIndex(("chave-ü-" + INDEX_KEY).encode("utf-8"))
    assert text.alias_key(ALIAS) == raw.alias_key(ALIAS)
    assert text.slot_key(*SLOT) == raw.slot_key(*SLOT)


def test_alias_and_slot_hashes_are_kept_apart() -> None:
    """The same bytes hashed as an alias and as a slot give different keys."""
    index = BlindIndex(INDEX_KEY)
    assert index.alias_key("\x00".join(SLOT)) != index.slot_key(*SLOT)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("ab", "c", "customer", "x@example.com"), ("a", "bc", "customer", "x@example.com")),
        (("s", "o", "customerx", "@example.com"), ("s", "o", "customer", "x@example.com")),
        (("", "so", "customer", "x@example.com"), ("so", "", "customer", "x@example.com")),
    ],
)
def test_slot_parts_never_run_together(
    one: tuple[str, str, str, str], other: tuple[str, str, str, str]
) -> None:
    assert "".join(one) == "".join(other)
    index = BlindIndex(INDEX_KEY)
    assert index.slot_key(*one) != index.slot_key(*other)


def test_message_and_other_hashes_are_kept_apart() -> None:
    index = BlindIndex(INDEX_KEY)
    joined = "order-1\x00<id@example.com>"
    assert index.message_key("order-1", "<id@example.com>") != index.alias_key(joined)
    assert index.message_key("order-1", "<id@example.com>") != index.slot_key(*SLOT)


def test_message_keys_are_keyed_and_their_parts_never_run_together() -> None:
    mine, other = BlindIndex(INDEX_KEY), BlindIndex(OTHER_KEY)
    assert mine.message_key("o1", "<a@b>") != other.message_key("o1", "<a@b>")
    assert mine.message_key("o1", "<a@b>") != BlindIndex().message_key("o1", "<a@b>")
    assert mine.message_key("ab", "c@x") != mine.message_key("a", "bc@x")
    assert mine.message_key("o1", "<a@b>") != mine.message_key("o2", "<a@b>")
    assert mine.message_key("o1", "<a@b>") == BlindIndex(INDEX_KEY).message_key("o1", "<a@b>")


def test_message_key_of_an_id_with_lone_surrogates() -> None:
    """Ids decoded with ``surrogateescape`` still get a stable, distinct stand-in."""
    index = BlindIndex(INDEX_KEY)
    odd = index.message_key("o1", "<caf\udce9@example.com>")
    assert odd == index.message_key("o1", "<caf\udce9@example.com>")
    assert odd != index.message_key("o1", "<caf\udcea@example.com>")
    assert len(odd) == 32


def test_values_are_128_bit_lower_case_hex() -> None:
    index = BlindIndex(INDEX_KEY)
    values = (
        index.alias_key(ALIAS),
        index.slot_key(*SLOT),
        index.message_key("order-1", "<id@example.com>"),
        BlindIndex().alias_key(""),
    )
    for value in values:
        assert len(value) == 32
        assert set(value) <= set("0123456789abcdef")


def test_hashes_are_independent_calls() -> None:
    """Each call starts from the keyed state: earlier calls leave nothing behind."""
    index = BlindIndex(INDEX_KEY)
    first = index.alias_key(ALIAS)
    index.alias_key("other@ct.example.com")
    index.slot_key(*SLOT)
    assert index.alias_key(ALIAS) == first
    assert BlindIndex(INDEX_KEY).slot_key(*SLOT) == index.slot_key(*SLOT)


def test_different_inputs_differ() -> None:
    index = BlindIndex(INDEX_KEY)
    assert index.alias_key(ALIAS) != index.alias_key(ALIAS.upper())
    assert index.slot_key(*SLOT) != index.slot_key(*SLOT[:3], "Maria@example.com")


@pytest.mark.parametrize("key", ["", b"", 42, ["k"]])
def test_bad_keys_are_refused(key: object) -> None:
    with pytest.raises(ConfigurationError, match="non-empty str or bytes"):
        BlindIndex(key)  # type: ignore[arg-type]


def test_repr_says_keyed_or_public_and_never_shows_the_key() -> None:
    assert repr(BlindIndex(INDEX_KEY)) == "<BlindIndex keyed>"
    assert repr(BlindIndex()) == "<BlindIndex public>"


def test_owner_keys_are_known_keyed_and_kept_apart() -> None:
    """The owner key is persisted (schema version 4): pinned, keyed, and not a slot or alias key."""
    mine, other, public = BlindIndex(INDEX_KEY), BlindIndex(OTHER_KEY), BlindIndex()
    assert mine.owner_key("maria@example.com") == "f60e63a34e362a8f1626c70e4405ca9e"
    assert public.owner_key("maria@example.com") == "0b3f68cff3bcfac4f94bfb2986dbccc6"
    assert other.owner_key("maria@example.com") not in {
        mine.owner_key("maria@example.com"),
        public.owner_key("maria@example.com"),
    }
    assert mine.owner_key("maria@example.com") != mine.alias_key("maria@example.com")
    assert mine.owner_key("\x00".join(SLOT)) != mine.slot_key(*SLOT)
    assert mine.owner_key("maria@example.com") != mine.owner_key("maria@example.co")
