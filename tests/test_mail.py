"""ct_alias.mail: byte-exact split and rewrite, header reading, addresses, summaries."""

from __future__ import annotations

import base64
import email.header
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.errors import InvalidArgument
from ct_alias.mail import (
    MAX_DEPTH,
    MAX_HEADER,
    HeaderField,
    MessageSummary,
    SplitMessage,
    addresses,
    format_address,
    get_all,
    get_first,
    parse_headers,
    rewrite_headers,
    split_message,
    summarize,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mail-parser"
CORPUS_FILES = (
    sorted(p for p in CORPUS.glob("*") if p.suffix in {".eml", ".msg"}) if CORPUS.is_dir() else []
)
CONTROL = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]}


def message(*headers: str, body: bytes = b"Hello,\r\nthe body.\r\n", nl: str = "\r\n") -> bytes:
    return (nl.join(headers) + nl + nl).encode() + body


def clean(text: str) -> bool:
    return not CONTROL.intersection(text)


def mime(
    *,
    text: str = "Olá Maria, seu pedido foi enviado.",
    attachment: bytes = b"%PDF-1.4 fake",
    filename: str = "nota.pdf",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Loja <loja@example.com>"
    msg["To"] = "Maria <maria@example.com>"
    msg["Subject"] = "Pedido enviado"
    msg["Date"] = "Thu, 01 Jan 2026 10:00:00 -0300"
    msg["Message-ID"] = "<p1@loja.example.com>"
    msg.set_content(text)
    msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return msg


# -- split_message ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "headers", "separator", "body"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", b"A: 1\r\nB: 2\r\n", b"\r\n", b"body\r\n"),
        (b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n", b"\n", b"body\n"),
        (b"A: 1\r\nB: 2\n\r\nbody", b"A: 1\r\nB: 2\n", b"\r\n", b"body"),  # mixed
        (b"A: 1\r\n folded\r\n\tmore\r\n\r\n", b"A: 1\r\n folded\r\n\tmore\r\n", b"\r\n", b""),
        (b"A: 1\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n", b"", b""),  # headers only
        (b"A: 1", b"A: 1", b"", b""),  # no line ending at all
        (b"A: 1\r\nnot a field\r\nrest", b"A: 1\r\n", b"", b"not a field\r\nrest"),
        (b"Subject : obsolete\r\n\r\nx", b"Subject : obsolete\r\n", b"\r\n", b"x"),
        (b"\r\nbody only", b"", b"\r\n", b"body only"),
        (b"just text\r\n\r\nmore", b"", b"", b"just text\r\n\r\nmore"),
        (
            b"From someone Thu Jan  1 2026\nA: 1\n\nx",
            b"",
            b"",
            b"From someone Thu Jan  1 2026\nA: 1\n\nx",
        ),
        (b" leading blank: no\r\n\r\n", b"", b"", b" leading blank: no\r\n\r\n"),
        (b": empty name\r\n\r\n", b"", b"", b": empty name\r\n\r\n"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
            b"",
            b"",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
        ),
        (b"", b"", b"", b""),
        (b"A: a\x00b\xff\r\r\n\r\n\x00", b"A: a\x00b\xff\r\r\n", b"\r\n", b"\x00"),  # bare CR kept
    ],
)
def test_split(data: bytes, headers: bytes, separator: bytes, body: bytes) -> None:
    parts = split_message(data)
    assert (parts.headers, parts.separator, parts.body) == (headers, separator, body)
    assert parts.join() == data


def test_split_long_lines_and_bytes_like() -> None:
    data = b"X-Long: " + b"y" * 100_000 + b"\r\n\r\n" + b"z" * 100_000
    parts = split_message(bytearray(data))  # type: ignore[arg-type]
    assert parts.body == b"z" * 100_000
    assert split_message(memoryview(data)).join() == data  # type: ignore[arg-type]
    assert "100010 bytes" in repr(parts)
    with pytest.raises(InvalidArgument):
        split_message("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'separator'"):
        SplitMessage(b"", b"x", b"")


def test_newline() -> None:
    assert split_message(b"A: 1\nB: 2\r\n\r\n").newline == b"\n"
    assert split_message(b"A: 1\r\n\r\n").newline == b"\r\n"
    assert split_message(b"\nbody").newline == b"\n"
    assert split_message(b"body").newline == b"\r\n"


@pytest.mark.parametrize(
    ("data", "headers", "expected"),
    [
        (b"A: 1\r\n\r\nbody", b"B: 2\r\n", b"B: 2\r\n\r\nbody"),
        (b"A: 1\n\nbody", b"B: 2", b"B: 2\n\nbody"),  # a line ending is added
        (b" body starting with a blank", b"B: 2\r\n", b"B: 2\r\n\r\n body starting with a blank"),
        (b"A: 1\r\nX-Not-Header\r\n", b"B: 2\r\n", b"B: 2\r\n\r\nX-Not-Header\r\n"),
        (b"A: 1\r\n", b"B: 2\r\n", b"B: 2\r\n"),  # headers only stays headers only
        (b"A: 1\r\n\r\nbody", b"", b"\r\nbody"),
        (b"body only", b"", b"body only"),
    ],
)
def test_join_with_new_headers(data: bytes, headers: bytes, expected: bytes) -> None:
    parts = split_message(data)
    joined = parts.join(headers)
    assert joined == expected
    assert split_message(joined).body == parts.body


@given(st.binary(max_size=2000))
@example(b"A: 1\r\n\r\n")
@example(b"A:\n \n\nb")
def test_split_join_round_trip(data: bytes) -> None:
    assert split_message(data).join() == data


header_line = st.builds(
    lambda name, value, nl: name + b":" + value + nl,
    st.sampled_from([b"From", b"To", b"Subject", b"X-A", b"received", b" folded", b"bad line"]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"\r\n", b"\n", b""]),
)
messages = st.builds(
    lambda lines, sep, body: b"".join(lines) + sep + body,
    st.lists(header_line, max_size=8),
    st.sampled_from([b"\r\n", b"\n", b""]),
    st.binary(max_size=200),
)


@given(messages)
def test_split_join_round_trip_on_message_like_bytes(data: bytes) -> None:
    parts = split_message(data)
    assert parts.join() == data
    assert b"".join(f.raw for f in parse_headers(parts.headers)) == parts.headers
    assert all(f.name for f in parse_headers(parts.headers))


# -- parse_headers -----------------------------------------------------------------


def test_parse_headers() -> None:
    block = (
        b"Received: from a\r\n\tby b; Thu, 1 Jan 2026\r\n"
        b"Subject : =?utf-8?q?Ol=C3=A1?= =?utf-8?q?_mundo?=\r\n"
        b"To: a@example.com,\r\n b@example.com\r\n"
        b"to: c@example.com\r\n"
    )
    fields = parse_headers(block)
    assert [f.name for f in fields] == ["Received", "Subject", "To", "to"]
    assert fields[0].value == "from a\tby b; Thu, 1 Jan 2026".replace("\t", " ")
    assert fields[1].value == "Olá mundo"
    assert fields[1].unfolded == "=?utf-8?q?Ol=C3=A1?= =?utf-8?q?_mundo?="
    assert fields[2].value == "a@example.com, b@example.com"
    assert b"".join(f.raw for f in fields) == block
    assert [f.value for f in get_all(fields, "TO")] == [
        "a@example.com, b@example.com",
        "c@example.com",
    ]
    assert get_first(fields, "subject") is fields[1]
    assert get_first(fields, "Cc") is None
    assert "a@example.com" not in repr(fields[2])  # values may hold real addresses


def test_parse_headers_hostile_values() -> None:
    fields = parse_headers(
        b"From: =?utf-8?q?Evil=0D=0ABcc:_x@y.com?= <a@b.com>\r\n"
        b"X-Nul: a\x00b\r\n"
        b"X-Latin: Jos\xe9\r\n"
        b"X-Bidi: =?utf-8?q?invoice=E2=80=AEfdp.exe?=\r\n"
        b"X-Bad-Charset: =?x-unknown?q?abc=FF?= =?utf-8?b?!!!?=\r\n"
        b"X-Split-Char: =?utf-8?q?a=C3?= =?utf-8?q?=A9b?=\r\n"
        b"X-Escape: =?utf-8?q?x?= C:\\u12\r\n"
    )
    values = {f.name: f.value for f in fields}
    assert values["From"] == "Evil  Bcc: x@y.com <a@b.com>"
    assert values["X-Nul"] == "a b"
    assert values["X-Latin"] == "Jos\ufffd"
    assert values["X-Bidi"] == "invoicefdp.exe"
    assert values["X-Split-Char"] == "aéb"
    assert values["X-Escape"].endswith("C:\\u12")
    for f in fields:
        assert clean(f.value)
        assert clean(f.unfolded)


def test_parse_headers_keeps_bytes_before_the_first_field() -> None:
    fields = parse_headers(b" stray\r\n\r\nA: 1\r\n")
    assert [f.name for f in fields] == ["", "A"]
    assert fields[0].value == "stray"
    assert fields[0].raw == b" stray\r\n\r\n"
    assert parse_headers(b"") == []
    with pytest.raises(InvalidArgument):
        parse_headers(None)  # type: ignore[arg-type]


@given(st.binary(max_size=600))
@example(b"Subject: =?utf-8?q?=0D=0A?=\r\n")
@example(b"A: =?utf-8?b?w6k?= =?utf-8*en?q?x?=\n")
def test_parse_headers_never_fails_and_is_lossless(data: bytes) -> None:
    fields = parse_headers(data)
    assert b"".join(f.raw for f in fields) == data
    for f in fields:
        assert clean(f.value)
        assert clean(f.unfolded)
        assert f.unfolded == HeaderField(f.name, f.raw, f.value).unfolded


@given(st.text(max_size=80))
def test_encoded_words_never_inject(text: str) -> None:
    word = "=?utf-8?b?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() + "?="
    (f,) = parse_headers(f"Subject: {word}\r\n".encode())
    assert clean(f.value)


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


# -- summarize: headers ----------------------------------------------------------------


def test_summary_of_a_simple_message() -> None:
    data = message(
        "From: =?utf-8?q?Jo=C3=A3o?= <joao@example.com>",
        "To: Maria <maria@example.com>, b@example.com",
        "To: c@example.com",
        "Cc: d@example.com",
        "Reply-To: r@example.com",
        "Subject: =?utf-8?q?Pedido_faturado_=E2=9C=93?=",
        "Date: Thu, 01 Jan 2026 10:00:00 -0300",
        "Message-ID: < abc@example.com >",
        "In-Reply-To: <x@example.com> (comment)",
        "References: <r1@example.com>\r\n <r2@example.com> <x@example.com>",
        body=b"Seu   pedido\r\n\r\nfoi faturado.\r\n",
    )
    s = summarize(data)
    assert isinstance(s, MessageSummary)
    assert s.message_id == "abc@example.com"
    assert s.in_reply_to == ("x@example.com",)
    assert s.references == ("r1@example.com", "r2@example.com", "x@example.com")
    assert s.from_ == (("João", "joao@example.com"),)
    assert s.to == (("Maria", "maria@example.com"), ("", "b@example.com"), ("", "c@example.com"))
    assert s.cc == (("", "d@example.com"),)
    assert s.reply_to == (("", "r@example.com"),)
    assert s.subject == "Pedido faturado ✓"
    assert s.date == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    assert s.size == len(data)
    assert s.first_words == "Seu pedido foi faturado."
    assert (s.has_attachment, s.attachment_names) == (False, ())
    assert (s.content_type, s.is_report) == ("text/plain", False)
    assert len(s.content_hash) == 64
    assert s.defects == ("2 To fields",)
    assert "maria@example.com" not in repr(s)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 01 Jan 2026 10:00:00 +0000", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("Thu, 01 Jan 2026 10:00:00 -0000", datetime(2026, 1, 1, 10, tzinfo=UTC)),  # naive
        ("1 Jan 2026 10:00 +0530", datetime(2026, 1, 1, 4, 30, tzinfo=UTC)),
        ("Thu, 01 Jan 2026 10:00:00 GMT", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("yesterday", None),
        ("Thu, 01 Jan 2026 10:00:00 +99999999999999999999", None),
        ("Thu, 99 Jan 2026 10:00:00 +0000", None),
        ("Fri, 31 Dec 9999 23:59:59 -2359", None),
        ("Thu, 01 Jan 70 10:00:00 +0000", datetime(1970, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_summary_dates(value: str, expected: datetime | None) -> None:
    s = summarize(message("From: a@example.com", f"Date: {value}"))
    assert s.date == expected
    if expected is None:
        assert "unreadable Date field" in s.defects
    else:
        assert s.date is not None
        assert s.date.tzinfo is UTC


def test_summary_message_ids_without_brackets() -> None:
    s = summarize(message("Message-ID: abc@ex ample", "In-Reply-To: a@x b@y", "References: <"))
    assert s.message_id == "abc@example"
    assert s.in_reply_to == ("a@x", "b@y")
    assert s.references == ()
    assert summarize(message("Message-ID: <>")).message_id is None
    assert summarize(message(f"Message-ID: <{'x' * 2000}@example>")).message_id is None


def test_summary_of_hostile_headers() -> None:
    data = (
        b"From: =?utf-8?q?Evil=0D=0ABcc:_x@y.com?= <a@b.com>\r\n"
        b"From: second@example.com\r\n"
        b"To: " + b", ".join(b"p%d@example.org" % i for i in range(1000)) + b"\r\n"
        b"Subject: \xe4\xb8\xad\xe6\x96\x87 \xd6\xd0\xce\xc4 a\x00b\r\n"
        b"X-Long: " + b"y" * 50_000 + b"\r\n\r\nbody"
    )
    s = summarize(data)
    # the encoded word holds specials, which RFC 2047 forbids in a phrase: it reads as a group
    assert s.from_ == (("", "_x@y.com?="), ("", "a@b.com"))
    assert len(s.to) == 1000
    assert s.subject.startswith("中文 ")
    assert clean(s.subject)
    assert "2 From fields" in s.defects
    assert "NUL byte in the Subject field" in s.defects
    assert "no Date field" in s.defects


# -- summarize: bodies -----------------------------------------------------------------


def test_summary_of_an_email_message_with_attachment() -> None:
    msg = mime()
    s = summarize(msg)
    assert s.first_words == "Olá Maria, seu pedido foi enviado."
    assert s.content_type == "multipart/mixed"
    assert (s.has_attachment, s.attachment_names) == (True, ("nota.pdf",))
    assert s.size == len(msg.as_bytes(policy=email.policy.SMTP))
    assert summarize(msg.as_bytes(policy=email.policy.SMTP)) == s
    assert summarize(bytearray(msg.as_bytes(policy=email.policy.SMTP))) == s  # type: ignore[arg-type]
    assert s.defects == ()


@pytest.mark.parametrize("bad", ["text", 42, None, ["bytes"]])
def test_summary_refuses_what_is_not_a_message(bad: object) -> None:
    with pytest.raises(InvalidArgument):
        summarize(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [-1, 1.5, True, "200"])
def test_summary_refuses_bad_limits(limit: object) -> None:
    with pytest.raises(InvalidArgument):
        summarize(b"A: 1\r\n\r\nx", limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("one two three four", 200, "one two three four"),
        ("one two three four", 9, "one two"),
        ("one two three four", 7, "one two"),
        ("one two three four", 8, "one two"),
        ("onetwothree four", 5, "onetw"),
        ("  spaced\t\tout \r\n text ", 200, "spaced out text"),
        ("anything", 0, ""),
    ],
)
def test_first_words_are_cut_at_a_word(text: str, limit: int, expected: str) -> None:
    assert (
        summarize(message("From: a@b.example", body=text.encode()), limit=limit).first_words
        == expected
    )


def test_first_words_from_html_only() -> None:
    html = (
        "<html><head><title>Title</title><style>p {color: red}</style>"
        "<script>var x = '<p>no</p>';</script></head><body><!-- hidden -->"
        "<p>Pedido&nbsp;<b>n&ordm;</b>&#32;1234 &amp; mais</p><div>Obrigado</div><br>Loja"
        "<![if x]>"
    )
    data = message(
        "From: a@b.example",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        body=html.replace("=", "=3D").encode(),
    )
    assert summarize(data).first_words == "Pedido nº 1234 & mais Obrigado Loja"  # nbsp collapsed


def test_first_words_prefer_plain_over_html() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.add_alternative("<p>html words</p>", subtype="html")
    msg.add_alternative("plain words")
    assert summarize(msg).first_words == "plain words"


def test_long_base64_text_is_decoded_in_steps() -> None:
    text = "ção ünïcödé 中文 " * 3000  # far more than one 2 KiB step, multibyte everywhere
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.set_content(text, cte="base64")
    s = summarize(msg, limit=50_000)
    words = text.split()
    expected = ""
    for word in words:
        if len(expected) + 1 + len(word) > 50_000:
            break
        expected = f"{expected} {word}" if expected else word
    assert s.first_words == expected
    assert "\ufffd" not in s.first_words
    qp = EmailMessage()
    qp["From"] = "a@b.example"
    qp.set_content(text, cte="quoted-printable")
    assert summarize(qp, limit=50_000).first_words == s.first_words


@pytest.mark.parametrize(
    ("charset", "cte", "body", "words", "defect"),
    [
        ("iso-8859-1", "8bit", "Olá".encode("latin-1"), "Olá", None),
        ("windows-1252", "8bit", "“quoted”".encode("cp1252"), "“quoted”", None),
        ("gb2312", "8bit", "中文".encode("gb2312"), "中文", None),
        ("gb2312", "8bit", "你好".encode(), "你好", "text declared as 'gb2312' is UTF-8"),
        ("x-unknown", "8bit", "Olá".encode(), "Olá", "unknown charset 'x-unknown', read as UTF-8"),
        ("base64", "8bit", b"abc", "abc", "unknown charset 'base64', read as UTF-8"),
        ("idna", "8bit", b"ab\xffc", "ab\ufffdc", None),
        ("us-ascii", "8bit", "Olá".encode(), "Olá", None),
        ("utf-8", "base64", b"T2zD*oQ==", "Olá", "invalid base64 in the text part"),
        ("utf-8", "base64", b"T2zDoQ==T2zDoQ==", "Olá", None),  # stops at the padding
        ("utf-8", "base64", b"T2zDoQ", "Olá", None),  # missing padding
        (
            "utf-8",
            "x-uuencode",
            b"raw",
            "raw",
            "unknown transfer encoding 'x-uuencode', read as is",
        ),
    ],
)
def test_text_charsets_and_encodings(
    charset: str, cte: str, body: bytes, words: str, defect: str | None
) -> None:
    data = message(
        "From: a@b.example",
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {cte}",
        body=body,
    )
    s = summarize(data)
    assert s.first_words == words
    if defect is not None:
        assert defect in s.defects


def multipart(boundary: str, *parts: bytes, close: bool = True, subtype: str = "mixed") -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary.encode() + b"--\r\n"
    return (
        f"Content-Type: multipart/{subtype}; boundary={boundary!r}\r\n\r\n".replace(
            "'", '"'
        ).encode()
        + b"preamble\r\n"
        + body
        + b"epilogue"
    )


def test_nested_multiparts_and_attachment_rules() -> None:
    alternative = multipart(
        "alt",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain text",
        b"Content-Type: text/html\r\n\r\n<p>html</p>",
        subtype="alternative",
    )
    data = b"From: a@b.example\r\n" + multipart(
        "outer",
        alternative,
        b"Content-Type: image/png\r\nContent-Disposition: inline; filename=logo.png\r\n\r\nPNG",
        b"Content-Type: image/png\r\nContent-ID: <cid1>\r\n\r\nPNG",  # inline, no name: not counted
        b"Content-Type: text/plain\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.txt\r\n\r\nnot the body",
        b'Content-Type: application/pdf; name="=?utf-8?q?nota_fiscal=E2=80=AE.pdf?="\r\n\r\n%PDF',
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nx",
        b"Content-Type: message/rfc822\r\n\r\nSubject: forwarded\r\n\r\nnot counted",
    )
    s = summarize(data)
    assert s.first_words == "plain text"
    assert s.has_attachment
    assert s.attachment_names == ("logo.png", "€.txt", "nota fiscal.pdf")
    assert s.defects == ("no Date field",)


def test_boundary_prefixes_and_padding() -> None:
    data = b"From: a@b.example\r\n" + multipart(
        "b",
        b"Content-Type: text/plain\r\n\r\n--bb is not a boundary\r\n--b-- neither",
    ).replace(b"--b\r\n", b"--b  \t\r\n", 1)
    assert summarize(data).first_words == "--bb is not a boundary --b-- neither"


def test_report_is_a_report() -> None:
    data = (
        b"From: MAILER-DAEMON@example.com\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
        b"--r\r\n\r\nDelivery failed.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: x@y\r\n--r--\r\n"
    )
    s = summarize(data)
    assert (s.is_report, s.content_type, s.first_words) == (
        True,
        "multipart/report",
        "Delivery failed.",
    )
    assert not s.has_attachment


@pytest.mark.parametrize(
    ("data", "defect", "words"),
    [
        (
            b"From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\ntext",
            "multipart/mixed without a boundary parameter",
            "",
        ),
        (
            b"From: a@b.example\r\n" + multipart("x", b"\r\nfirst", b"\r\nsecond", close=False),
            "multipart boundary never closed",
            "first",
        ),
        (
            b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nno parts",
            "multipart body without any boundary line",
            "",
        ),
        (
            b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
            b"Content-Type: text/plain; name*" + b"9" * 5000 + b"*=a\r\n\r\nbody\r\n--x--",
            "unreadable MIME parameters",
            "body",
        ),
    ],
)
def test_broken_multiparts(data: bytes, defect: str, words: str) -> None:
    s = summarize(data)
    assert defect in s.defects
    assert s.first_words == words


param_pieces = st.sampled_from(
    [
        "; ", "name", "name*", "name*0", "name*1*", "name*99999999999999999999", "filename*0*",
        "charset", "boundary", "=", '"', "'", "''", "utf-8", "idna", "base64", "%FF", "%E2%82",
        "=?utf-8?b?w6k?=", "\\", "\u00e9", " ", "\t", "(", ")", "x",
    ]
)  # fmt: skip


@given(st.lists(param_pieces, max_size=30), st.lists(param_pieces, max_size=30))
@example(["; ", "name*", "=", "''a", "; ", "name*0", "=", "b"], [])
def test_hostile_mime_parameters(content_type: list[str], disposition: list[str]) -> None:
    data = (
        "From: a@b.example\r\n"
        f"Content-Type: text/plain{''.join(content_type)}\r\n"
        f"Content-Disposition: attachment{''.join(disposition)}\r\n\r\nbody"
    ).encode()
    s = summarize(data)
    assert all(clean(name) for name in s.attachment_names)


def test_deep_nesting_is_capped() -> None:
    inner = b"Content-Type: text/plain\r\n\r\ndeep text"
    for level in range(200):
        inner = multipart(f"b{level}", inner)
    s = summarize(b"From: a@b.example\r\n" + inner)
    assert f"multiparts nested deeper than {MAX_DEPTH} levels not read" in s.defects
    assert s.first_words == ""
    shallow = b"Content-Type: text/plain\r\n\r\nshallow text"
    for level in range(MAX_DEPTH - 1):
        shallow = multipart(f"b{level}", shallow)
    assert summarize(b"From: a@b.example\r\n" + shallow).first_words == "shallow text"


def test_many_parts_are_capped() -> None:
    data = b"From: a@b.example\r\n" + multipart("p", *[b"\r\nx"] * 1500)
    assert "parts beyond the first 1000 not read" in summarize(data).defects


@given(
    st.integers(min_value=0, max_value=300),
    st.lists(st.sampled_from([b"--bX", b"--b-", b"--b --", b"--b\tx", b"x--b"]), min_size=1),
)
def test_many_false_boundaries(count: int, false_lines: list[bytes]) -> None:
    noise = b"\r\n".join(false_lines[i % len(false_lines)] for i in range(count))
    parts = [
        b"Content-Type: text/plain\r\n\r\nfirst words\r\n" + noise,
        b"Content-Type: image/png; name=a.png\r\n\r\n" + noise,
        b"Content-Disposition: attachment; filename=b.txt\r\n\r\n" + noise,
    ]
    data = b"From: a@b.example\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n" + multipart("b", *parts)
    s = summarize(data, limit=11)
    assert (s.first_words, s.attachment_names, s.defects) == ("first words", ("a.png", "b.txt"), ())


def test_oversized_header_blocks() -> None:
    flood = b"X-Flood: 1\r\n" * 20_000
    s = summarize(b"From: a@b.example\r\n" + flood + b"\r\nbody")
    assert s.from_ == (("", "a@b.example"),)
    assert s.first_words == ""
    assert f"header block longer than {MAX_HEADER} octets: the rest is not read" in s.defects
    assert "header fields beyond the first 1000 not read" in s.defects
    part = b"Content-Type: text/plain\r\n" + flood + b"\r\npart body"
    s = summarize(b"From: a@b.example\r\n" + multipart("b", part, b"\r\nsecond"))
    assert s.first_words == "second"
    assert "a part header longer than 16384 octets not read" in s.defects


def test_attachments_are_not_decoded() -> None:
    garbage = b"*** not base64 at all ***\r\n" * 1000
    msg = mime()
    data = msg.as_bytes(policy=email.policy.SMTP)
    data = data.replace(base64.encodebytes(b"%PDF-1.4 fake").rstrip(b"\n"), garbage)
    s = summarize(data)
    assert s.defects == ()
    assert s.attachment_names == ("nota.pdf",)


@pytest.mark.parametrize(
    ("data", "defects", "content_type"),
    [
        (b"", ("no header fields: not an RFC 5322 message",), "application/octet-stream"),
        (
            b"\x00\xff" * 100,
            ("no header fields: not an RFC 5322 message",),
            "application/octet-stream",
        ),
        (
            b"From x Thu Jan 1\nFrom: a@b.example\n\nhi",
            ("starts with an mbox 'From ' line", "no Date field"),
            "text/plain",
        ),
        (
            b"From: a@b.example\r\nSubject: x\r\ngarbage\r\nmore",
            ("no empty line between the header and the body", "no Date field"),
            "text/plain",
        ),
        (b"Subject: only\r\n", ("no From field", "no Date field"), "text/plain"),
    ],
)
def test_not_quite_messages(data: bytes, defects: tuple[str, ...], content_type: str) -> None:
    s = summarize(data)
    assert s.defects == defects
    assert s.content_type == content_type
    assert s.size == len(data)


def test_mbox_and_broken_separator_words() -> None:
    assert summarize(b"From x Thu Jan 1\nFrom: a@b.example\n\nhi").first_words == "hi"
    assert summarize(b"From: a@b.example\r\ngarbage\r\nmore").first_words == "garbage more"


mime_parts = st.recursive(
    st.builds(
        lambda headers, body: headers + b"\r\n" + body,
        st.sampled_from(
            [
                b"",
                b"Content-Type: text/plain; charset=utf-8\r\n",
                b"Content-Type: text/html; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n",
                (
                    b'Content-Type: text/plain; charset="x"\r\n'
                    b"Content-Transfer-Encoding: quoted-printable\r\n"
                ),
                b"Content-Type: application/pdf; name*=utf-8''a%FF\r\n",
                b'Content-Disposition: attachment; filename="=?utf-8?b?!!?="\r\n',
                b"Content-Type: multipart/mixed\r\n",
                b"Content-Type: message/rfc822\r\n",
            ]
        ),
        st.binary(max_size=100),
    ),
    lambda children: st.builds(
        lambda boundary, parts, close: multipart(boundary, *parts, close=close),
        st.sampled_from(["a", "b", "a-1", "=_x"]),
        st.lists(children, max_size=4),
        st.booleans(),
    ),
    max_leaves=10,
)


@given(st.binary(max_size=3000))
@example(b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n')
@example(b'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\nx')
@example(b"Content-Type: text/plain; charset*=idna''x\r\n\r\nx")
@example(b'Content-Type: text/html\r\n\r\n<![ " A\n')
def test_summarize_never_fails_on_bytes(data: bytes) -> None:
    s = summarize(data)
    assert s.size == len(data)
    for text in (s.subject, s.first_words, *s.attachment_names, *s.defects):
        assert clean(text)


@given(mime_parts, st.integers(min_value=0, max_value=300))
def test_summarize_never_fails_on_mime_like_bytes(data: bytes, limit: int) -> None:
    s = summarize(b"From: a@b.example\r\n" + data, limit=limit)
    assert len(s.first_words) <= limit
    assert clean(s.first_words)


# -- the corpus ----------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    data = path.read_bytes()
    parts = split_message(data)
    assert parts.join() == data
    fields = parse_headers(parts.headers)
    assert b"".join(f.raw for f in fields) == parts.headers
    assert rewrite_headers(parts.headers) == parts.headers
    rewritten = parts.join(
        rewrite_headers(
            parts.headers,
            replace={"From": format_address("Loja ✓", "alias@ct.example.com"), "Reply-To": None},
            add=[("X-CT-Alias-Conversation", "order-1")],
        )
    )
    assert split_message(rewritten).body == parts.body
    s = summarize(data)
    assert s.size == len(data)
    assert len(s.first_words) <= 200
    for text in (s.subject, s.first_words, *s.attachment_names, *s.defects):
        assert clean(text)
    if fields:
        stdlib = BytesParser(policy=email.policy.default).parsebytes(data)
        assert s.content_type == stdlib.get_content_type()
        summary_of_rewrite = summarize(rewritten)
        assert summary_of_rewrite.from_ == (("Loja ✓", "alias@ct.example.com"),)
        assert summary_of_rewrite.first_words == s.first_words


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
def test_corpus_details() -> None:
    bounce = summarize((CORPUS / "mail_malformed_2.eml").read_bytes())
    assert bounce.is_report
    assert bounce.first_words.startswith("Your message has encountered delivery problems")
    chinese = summarize((CORPUS / "mail_test_12.eml").read_bytes())
    assert chinese.from_ == (("张先生", "baoguan@hotmail.com"),)
    assert chinese.subject == "代开各地增值税发票"
    assert chinese.first_words.startswith("你好\uff01我公司可代开各类增值税发票")
    big = summarize((CORPUS / "mail_test_2.eml").read_bytes())
    assert big.attachment_names == ("intestazione.jpg", "logometeo.jpg", "Bollettino.pdf")
    outlook = summarize((CORPUS / "mail_outlook_1.msg").read_bytes())
    assert outlook.defects == ("no header fields: not an RFC 5322 message",)
    gbk_subject = summarize((CORPUS / "mail_test_9.eml").read_bytes()).subject
    assert "\ufffd" not in gbk_subject


def test_summary_dates_keep_timezones_apart() -> None:
    a = summarize(message("Date: Thu, 01 Jan 2026 10:00:00 -0300")).date
    b = summarize(message("Date: Thu, 01 Jan 2026 14:00:00 +0100")).date
    assert a == b == datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(0)))
