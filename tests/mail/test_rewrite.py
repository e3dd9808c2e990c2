"""ct_alias.mail._rewrite: rewriting header fields, byte-exact, within RFC 5322's limits."""

from __future__ import annotations

import email.header

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.errors import InvalidArgument
from ct_alias.mail import (
    get_first,
    parse_headers,
    rewrite_headers,
    split_message,
)

from .support import messages

# -- rewrite_headers ---------------------------------------------------------------

BLOCK = (
    b"Received: from mx by relay; Thu, 1 Jan 2026\r\n"
    b"From: Maria <maria@example.com>\r\n"
    b"To: loja@example.com,\r\n\tother@example.com\r\n"
    b"Subject: =?utf-8?q?Ol=C3=A1?=\r\n"
    b"FROM: second@example.com\r\n"
    b"X-Odd: \xff\x00 kept\r\n"
)


def test_rewrite_replaces_first_removes_duplicates_keeps_the_rest() -> None:
    out = rewrite_headers(
        BLOCK,
        replace={"From": "Alias <a1@ct.example.com>", "to": None, "Cc": "never@added.example"},
        add=[("X-Trace", "order-1"), ("X-Second", "two")],
    )
    assert out == (
        b"X-Trace: order-1\r\n"
        b"X-Second: two\r\n"
        b"Received: from mx by relay; Thu, 1 Jan 2026\r\n"
        b"From: Alias <a1@ct.example.com>\r\n"
        b"Subject: =?utf-8?q?Ol=C3=A1?=\r\n"
        b"X-Odd: \xff\x00 kept\r\n"
    )


def test_rewrite_identity_and_line_endings() -> None:
    assert rewrite_headers(BLOCK) == BLOCK
    assert rewrite_headers(BLOCK, replace={}) == BLOCK
    lf = b"A: 1\nB: 2\r\n"
    assert rewrite_headers(lf, replace={"B": "3"}) == b"A: 1\nB: 3\n"
    assert rewrite_headers(lf, replace={"B": "3"}, newline=b"\r\n") == b"A: 1\nB: 3\r\n"
    assert rewrite_headers(b"", add=[("A", "1")]) == b"A: 1\r\n"
    assert rewrite_headers(b"A: 1", replace={"A": ""}) == b"A:\r\n"


def test_rewrite_folds_long_values() -> None:
    value = ", ".join(f"person{i}@example.org" for i in range(1000))
    out = rewrite_headers(b"To: x@example.org\r\n", replace={"To": value})
    lines = out.split(b"\r\n")[:-1]
    assert len(lines) > 100
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b" ") for line in lines[1:])
    (f,) = parse_headers(out)
    assert f.value == value
    long_word = "y" * 5000
    with pytest.raises(InvalidArgument):
        rewrite_headers(b"", add=[("X-Long", long_word)])
    one_long = "z" * 900
    (f,) = parse_headers(rewrite_headers(b"", add=[("X-Long", f"a {one_long} b")]))
    assert f.value == f"a {one_long} b"
    assert max(len(line) for line in f.raw.split(b"\r\n")) <= 998


def test_rewrite_encodes_non_ascii() -> None:
    out = rewrite_headers(
        b"Subject: x\n",
        replace={"Subject": "Pedido  faturado ✓ — obrigado, José!", "X-None": None},
        add=[("To", "Zoë <zoë@exemplo.br>")],
    )
    fields = parse_headers(out)
    assert [f.value for f in fields] == [
        "Zoë <zoë@exemplo.br>",
        "Pedido  faturado ✓ — obrigado, José!",
    ]
    assert b"<zo\xc3\xab@exemplo.br>" in out  # an RFC 6532 address is written as UTF-8
    assert out.split(b"\n")[1].isascii()


@pytest.mark.parametrize(
    ("replace", "add", "newline"),
    [
        ({"From": "a\r\nBcc: x@y"}, (), None),
        ({"From": "a\nb"}, (), None),
        ({"From": "a\x00b"}, (), None),
        ({"From": "a\x1bb"}, (), None),
        ({"From": "a\u2028b"}, (), None),
        ({}, [("X", "a\rb")], None),
        ({"Bad Name": "v"}, (), None),
        ({"Bad:Name": "v"}, (), None),
        ({"": "v"}, (), None),
        ({"Nãme": "v"}, (), None),
        ({"From": "a", "FROM": "b"}, (), None),
        ({}, [("X", 5)], None),
        ({}, [], b"\r"),
    ],
)
def test_rewrite_refuses(
    replace: dict[str, str | None], add: list[tuple[str, str]], newline: bytes | None
) -> None:
    with pytest.raises(InvalidArgument):
        rewrite_headers(BLOCK, replace=replace, add=add, newline=newline)


def test_rewrite_folds_long_non_ascii_values() -> None:
    subject = "Atualização do seu pedido nº 1234: ótimas notícias — " * 30
    out = rewrite_headers(b"Subject: x\r\n", replace={"Subject": subject})
    assert out.isascii()
    assert all(len(line) <= 78 for line in out.split(b"\r\n"))
    (f,) = parse_headers(out)
    assert f.value == subject.strip()
    (f,) = parse_headers(rewrite_headers(b"", add=[("Subject", "中文" * 1000)]))
    assert f.value == "中文" * 1000


def test_rewrite_accepts_tabs() -> None:
    assert rewrite_headers(b"", add=[("X", "a\tb")]) == b"X: a\tb\r\n"


# -- RFC 5322 line limits, exactly at and one past -----------------------------------


def test_a_line_of_exactly_78_octets_is_not_folded() -> None:
    value = "a " + "b" * 72  # "X: a " + 72 = 77 octets, then nothing more
    assert rewrite_headers(b"", add=[("X", value)]) == f"X: {value}\r\n".encode()
    value = "a " + "b" * 73  # "X: a bbb…" is exactly 78 octets
    assert len(f"X: {value}") == 78
    assert rewrite_headers(b"", add=[("X", value)]) == f"X: {value}\r\n".encode()


def test_a_line_of_79_octets_is_folded_at_its_last_space() -> None:
    value = "a " + "b" * 74  # 79 octets on one line
    assert rewrite_headers(b"", add=[("X", value)]) == f"X: a\r\n {'b' * 74}\r\n".encode()


def test_a_first_word_may_fill_a_998_octet_line() -> None:
    word = "w" * (998 - len("X: "))
    out = rewrite_headers(b"", add=[("X", word)])
    assert out == f"X: {word}\r\n".encode()
    assert len(out) - 2 == 998


def test_a_first_word_one_past_998_moves_to_its_own_line() -> None:
    word = "w" * (999 - len("X: "))
    out = rewrite_headers(b"", add=[("X", word)])
    assert out == f"X:\r\n {word}\r\n".encode()
    assert max(len(line) for line in out.split(b"\r\n")) == 997


def test_a_continuation_line_of_exactly_998_octets() -> None:
    word = "w" * 997  # " " + 997 = 998 octets, after the first line "X: a"
    out = rewrite_headers(b"", add=[("X", f"a {word}")])
    assert out == f"X: a\r\n {word}\r\n".encode()


def test_a_continuation_line_of_999_octets_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="too long"):
        rewrite_headers(b"", add=[("X", f"a {'w' * 998}")])


def test_a_998_octet_name_is_refused_and_997_is_not() -> None:
    """A field name and its colon must fit on one line."""
    assert rewrite_headers(b"", add=[("N" * 997, "")]) == b"N" * 997 + b":\r\n"
    with pytest.raises(InvalidArgument, match="one line"):
        rewrite_headers(b"", add=[("N" * 998, "")])


# -- control characters in names and values ------------------------------------------


@pytest.mark.parametrize("name", ["X\x7fA", "X\u2029A", "X A", "X\x1fA", "X\x80A", "X:A"])
def test_rewrite_refuses_a_name_with_del_u2029_or_other_non_ftext(name: str) -> None:
    with pytest.raises(InvalidArgument):
        rewrite_headers(b"", add=[(name, "v")])
    with pytest.raises(InvalidArgument):
        rewrite_headers(b"A: 1\r\n", replace={name: "v"})


def test_rewrite_accepts_the_edges_of_ftext() -> None:
    assert rewrite_headers(b"", add=[("!~", "v")]) == b"!~: v\r\n"


@pytest.mark.parametrize(
    "value",
    ["a\x7fb", "a\u2029b", "a\u2028b", "a\x9fb", "a\x80b", "a\x1fb", "a\x01b", "a\x0bb"],
)
def test_rewrite_refuses_a_value_with_del_u2029_or_other_controls(value: str) -> None:
    with pytest.raises(InvalidArgument, match="control character"):
        rewrite_headers(b"", add=[("X", "X" + value)])
    with pytest.raises(InvalidArgument, match="control character"):
        rewrite_headers(b"", add=[("X", value)])
    with pytest.raises(InvalidArgument, match="control character"):
        rewrite_headers(b"X: 1\r\n", replace={"X": value})


@pytest.mark.parametrize(
    "value",
    [
        "Xérès",  # an encoded word starting with a letter that a strip could eat
        "XX Xérès X",
        "a \tñ b",  # a tab inside an encoded word is kept
        "  ñ  x",
        "a \xa0ñ\u3000 b",  # unicode spaces are content, not folding white space
    ],
)
def test_encoded_words_keep_every_character(value: str) -> None:
    (f,) = parse_headers(rewrite_headers(b"", add=[("Subject", value)]))
    assert f.value.replace("\t", " ") == value.strip(" ").replace("\t", " ")


def test_unicode_spaces_at_the_edges_of_a_value_are_kept() -> None:
    """Only spaces and tabs are folding white space; NBSP and U+3000 are text."""
    out = rewrite_headers(b"", add=[("Subject", "\xa0ñ\u3000")])
    raw = out.decode("ascii").partition(":")[2].strip()
    decoded = "".join(
        part.decode(charset or "ascii") if isinstance(part, bytes) else part
        for part, charset in email.header.decode_header(raw)
    )
    assert decoded == "\xa0ñ\u3000"


def test_rewrite_names_the_argument_that_is_not_bytes() -> None:
    with pytest.raises(InvalidArgument) as info:
        rewrite_headers("From: a@example.com\r\n")  # type: ignore[arg-type]
    assert info.value.name == "headers"


@pytest.mark.parametrize("value", ["a\xa0b", "a\u00adb", "a\u200bb", "a~b", "X\xa0X"])
def test_rewrite_keeps_unprintables_that_are_not_controls(value: str) -> None:
    (f,) = parse_headers(rewrite_headers(b"", add=[("X", value)]))
    assert f.value == value


field_values = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")) | st.sampled_from(" \t"),
    max_size=400,
).filter(lambda v: "=?" not in v)
BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def shown(value: str) -> str:
    """How a written value reads back: tabs as spaces, no bidi controls, stripped."""
    return "".join(" " if c == "\t" else c for c in value if c not in BIDI).strip()


@given(messages, field_values, field_values)
@example(b"A: 1\r\n\r\nbody", " leading and trailing ", "x")
@example(b"From: 1\r\n\r\nbody", "José  e  Zoë,  a@b", "\u3000 ideographic space\u202e")
def test_rewrite_never_breaks_a_field(data: bytes, value: str, other: str) -> None:
    parts = split_message(data)
    out = rewrite_headers(parts.headers, replace={"From": value}, add=[("X-Other", other)])
    for line in out.split(b"\n")[1:-1]:
        assert line[:1] in b" \t" or b":" in line  # a continuation, or a field of its own
    for line in out.split(b"\n"):
        assert len(line) <= 998 or line in parts.headers
    fields = parse_headers(out)
    assert fields[0].name == "X-Other"
    assert fields[0].value == shown(other)
    written = get_first(fields, "From")
    if get_first(parse_headers(parts.headers), "From") is not None:
        assert written is not None
        assert written.value == shown(value)
    joined = parts.join(out)
    assert split_message(joined).body == parts.body
    assert joined.endswith(parts.body)


@given(st.binary(max_size=1000))
def test_rewrite_without_changes_is_identity(data: bytes) -> None:
    assert rewrite_headers(data) == data
    parts = split_message(data)
    assert parts.join(rewrite_headers(parts.headers)) == data
