"""ct_alias.mail._addresses: reading address lists, formatting addresses."""

from __future__ import annotations

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
from ct_alias.mail._addresses import address_problem

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
