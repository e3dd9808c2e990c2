"""ct_alias.mail._headers: byte-exact split and join, header fields, encoded words."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.errors import InvalidArgument
from ct_alias.mail import (
    HeaderField,
    SplitMessage,
    get_all,
    get_first,
    parse_headers,
    split_message,
)
from ct_alias.mail._headers import SplitView

from .support import clean, messages

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


@given(messages)
def test_split_join_round_trip_on_message_like_bytes(data: bytes) -> None:
    parts = split_message(data)
    assert parts.join() == data
    assert b"".join(f.raw for f in parse_headers(parts.headers)) == parts.headers
    assert all(f.name for f in parse_headers(parts.headers))


@given(
    st.one_of(messages, st.binary(max_size=500)),
    st.sampled_from([b"", b"B: 2", b"B: 2\r\n", b"B: 2\n", b"B: 2\r\nC: 3"]),
)
@example(b"A: 1\n\nbody", b"B: 2")
@example(b" body starting with a blank", b"B: 2\r\n")
@example(b"A: 1\r\nX-Not-Header\r\n", b"B: 2")
def test_split_view_is_split_message_without_the_copy(data: bytes, headers: bytes) -> None:
    parts, view = split_message(data), SplitView(data)
    assert (view.headers, view.separator) == (parts.headers, parts.separator)
    assert view.join(headers) == parts.join(headers)
    assert view.body == parts.body
    assert view.body is view.body  # copied once, on first use
    with pytest.raises(InvalidArgument):
        view.join("B: 2")  # type: ignore[arg-type]


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
