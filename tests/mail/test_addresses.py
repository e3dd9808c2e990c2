"""ct_alias.mail._addresses: reading address lists, formatting addresses."""

from __future__ import annotations

from email.utils import getaddresses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.errors import InvalidArgument
from ct_alias.mail import (
    addresses,
    format_address,
    parse_headers,
    rewrite_headers,
)
from ct_alias.mail._addresses import _plain, address_problem, parse_addresses
from ct_alias.mail._headers import safe_text

from .support import CONTROL, clean

# -- addresses ---------------------------------------------------------------------


def test_addresses() -> None:
    assert addresses(
        '"Silva, Maria" <maria@example.com>, =?utf-8?q?Jo=C3=A3o?= <joao@example.com>,'
        " Team: ana@example.com, bia@example.com;, <>, undisclosed-recipients:;,"
        " (comment) carlos@example.com (Carlos)"
    ) == [
        ("Silva, Maria", "maria@example.com"),
        ("João", "joao@example.com"),
        ("", "ana@example.com"),
        ("", "bia@example.com"),
        ("comment Carlos", "carlos@example.com"),
    ]
    assert addresses("") == []
    assert addresses("not an address at all") == [("", "not")]  # not validated
    assert addresses("Maria\r\n <maria@example.com>") == [("Maria", "maria@example.com")]
    with pytest.raises(InvalidArgument):
        addresses(b"a@b")  # type: ignore[arg-type]


def test_addresses_of_a_thousand_recipients() -> None:
    value = ", ".join(f"Person {i} <person{i}@example.org>" for i in range(1000))
    found = addresses(value)
    assert len(found) == 1000
    assert found[999] == ("Person 999", "person999@example.org")


#: Plain address lists (see ``_plain``): dot-atoms of RFC 5322 atext, plain-word phrases, blanks.
_ATOM = st.text(alphabet="abZ09!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=4)
_ADDRESS = st.builds(
    "{}@{}".format,
    st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
    st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
)
_BLANKS = st.text(alphabet=" \t", max_size=2)
_ENTRY = st.one_of(
    st.builds("{}{}{}".format, _BLANKS, _ADDRESS, _BLANKS),
    st.builds(
        "{}{}{}<{}>{}".format,
        _BLANKS,
        st.lists(_ATOM, min_size=1, max_size=3).map(" ".join),
        _BLANKS,
        _ADDRESS,
        _BLANKS,
    ),
)
_PLAIN_LIST = st.lists(_ENTRY, min_size=1, max_size=4).map(",".join)
#: One character of a plain list replaced by one that may make it not plain.
_NEAR_PLAIN = st.builds(
    lambda value, at, char: value[:at] + char + value[at + 1 :],
    _PLAIN_LIST,
    st.integers(0, 60),
    st.sampled_from([*' \t.@<>,"()[]:;\\\r\n\x00=?é', ""]),
)


@given(st.one_of(_PLAIN_LIST, _NEAR_PLAIN))
@example("a@b, Maria Silva <m.s@example.com>,\tx.y@z")
@example("=?utf-8?q?Jo=C3=A3o?= <joao@example.com>")
@example("a..b@example.com")  # not a dot-atom: the stdlib parser's business
@example("a@b,")
def test_plain_address_lists_read_as_the_stdlib_parser_reads_them(value: str) -> None:
    """The fast path gives exactly :func:`getaddresses`'s pairs, or declines."""
    plain = _plain(value)
    if plain is not None:
        assert plain == getaddresses([safe_text(value)])


@pytest.mark.parametrize(
    "value",
    [
        '"Silva, Maria" <maria@example.com>',
        "(comment) carlos@example.com",
        "Team: ana@example.com;",
        "a@b, , c@d",
        "a@b,",
        "Jos\u00e9 <jose@example.com>",
        "jos\u00e9@example.com",
        "a@[127.0.0.1]",
        "a@b\r\nBcc: c@d",
        "Maria <m@example.com",
        "a@b@c",
        "< a@b >",
        "",
    ],
)
def test_plain_declines_what_is_not_plain(value: str) -> None:
    assert _plain(value) is None


def test_a_long_cc_list_is_read_without_the_stdlib_parser() -> None:
    value = ", ".join(f"pessoa{i}.x@example.org" for i in range(1000))
    assert _plain(value) == [("", f"pessoa{i}.x@example.org") for i in range(1000)]
    assert parse_addresses(value) == (_plain(value), 0)


@pytest.mark.parametrize(
    "value",
    [
        "a" * 200_000,
        "a" * 200_000 + "@",
        "a " * 100_000 + "<",
        " " * 200_000 + "x",
        "a." * 100_000 + "@b",
        "a@" + "b." * 100_000,
        "a\t" * 100_000 + "<a@b",
    ],
)
def test_plain_is_linear_on_hostile_values(value: str) -> None:
    # a backtracking pattern would take hours here; each entry is matched once, left to right
    assert _plain(value) is None or _plain(value) == getaddresses([safe_text(value)])


@given(st.text(max_size=200))
@example('"a\\" <x@y>')
@example("=?utf-8?q?=0A?= <a@b>")
def test_addresses_never_fail(value: str) -> None:
    for name, address in addresses(value):
        assert clean(name)
        assert clean(address)
        assert address


# -- format_address ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("Maria Silva", "maria@example.com", "Maria Silva <maria@example.com>"),
        ("", "maria@example.com", "maria@example.com"),
        ("  \r\n ", "maria@example.com", "maria@example.com"),
        ("Silva, Maria", "m@example.com", '"Silva, Maria" <m@example.com>'),
        ('Say "hi"', "m@example.com", '"Say \\"hi\\"" <m@example.com>'),
        ("Dr. Who", "m@example.com", '"Dr. Who" <m@example.com>'),
        ("José", "jose@example.com", "=?utf-8?b?Sm9zw6k=?= <jose@example.com>"),
        ("=?utf-8?q?x?=", "m@example.com", "=?utf-8?b?PT91dGYtOD9xP3g/PQ==?= <m@example.com>"),
        ("Ana", "ana@exemplo.com.br", "Ana <ana@exemplo.com.br>"),
        ("Ana", "josé@exemplo.br", "Ana <josé@exemplo.br>"),  # RFC 6532
        ("Ana", "a@[192.0.2.1]", "Ana <a@[192.0.2.1]>"),
    ],
)
def test_format_address(name: str, address: str, expected: str) -> None:
    assert format_address(name, address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "no-at-sign",
        "@example.com",
        "a@",
        "a\r\n@example.com",
        "a@example.com\r\nBcc: x@y",
        "a\x00@example.com",
        "a b@example.com",
        '"a b"@example.com',
        "a@example.com>",
        "<a@example.com",
        "a,b@example.com",
        "a@b@c",
        "x" * 250 + "@example.com",
        "a\x07@example.com",
    ],
)
def test_format_address_refuses(address: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        format_address("Name", address)
    assert info.value.name == "address"


def test_format_address_refuses_non_strings() -> None:
    with pytest.raises(InvalidArgument):
        format_address("Name", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        format_address(None, "a@example.com")  # type: ignore[arg-type]


@given(st.text(max_size=300))
@example("José\r\nBcc: victim@example.org")
@example("x" * 500)
@example('a\\" b')
def test_format_address_round_trips(name: str) -> None:
    value = format_address(name, "maria@example.com")
    assert clean(value)
    assert value.isascii()
    shown = " ".join("".join(" " if c in CONTROL else c for c in name).split())
    (f,) = parse_headers(rewrite_headers(b"", add=[("From", value)]))
    assert addresses(f.unfolded) == [(shown, "maria@example.com")]


def test_the_read_back_check_gives_the_same_answer_when_asked_again() -> None:
    for _ in range(3):  # the answers are cached: the same each time
        for address in ("a,b@example.com", "a@b@c"):
            assert address_problem(address) == "does not read back as one address"
            with pytest.raises(InvalidArgument):
                format_address("Name", address)
        assert address_problem("maria@example.com") is None
