"""ct_alias.mail._mime: MIME structure, multiparts, attachments, the caps on hostile nesting."""

from __future__ import annotations

import base64
import email.policy
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.mail import (
    MAX_DEPTH,
    MAX_HEADER,
    summarize,
)
from ct_alias.mail._mime import _Delimiters

from .support import clean, mime, multipart


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


def _reference_delimiters(data: bytes, marker: bytes) -> list[tuple[int, int, bool]]:
    """Every boundary line of ``data``, found by a regular expression alone."""
    line = re.compile(rb"(?:(?<=\n)|\A)" + re.escape(marker) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    return [(m.start(), m.end(), m.group(1) is not None) for m in line.finditer(data)]


@given(st.lists(st.sampled_from([b"-", b"--", b"--b", b"b", b"x", b" ", b"\r\n", b"\n"])))
@example([b"x-", b"\r\n", b"--b", b"\r\n"])
@example([b"-" * 100, b"\n--b--", b" "])
def test_delimiters_skip_to_dashes_and_miss_none(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    delimiters = _Delimiters(data, b"b", 0, len(data))
    found, pos = [], 0
    while (line := delimiters.next(pos)) is not None:
        found.append(line)
        pos = line[1]
    expected, last = [], -1
    for line in _reference_delimiters(data, b"--b"):
        if line[0] >= last:  # the scan goes on after each line it found
            expected.append(line)
            last = line[1]
    assert found == expected


def test_parts_around_a_base64_attachment_with_dashes_nearby() -> None:
    pdf = base64.encodebytes(bytes(range(256)) * 400)  # no "-" in base64: skipped by memchr
    data = b"From: a@b.example\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n" + multipart(
        "=_b-1",
        b"Content-Type: text/plain\r\n\r\nfirst - words --\r\n-- \r\nsignature",
        b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + pdf,
        b"Content-Disposition: attachment; filename=b-2.txt\r\n\r\n--=_b-1x not a boundary",
    )
    s = summarize(data, limit=13)
    assert (s.first_words, s.attachment_names, s.defects) == (
        "first - words",
        ("a.pdf", "b-2.txt"),
        (),
    )
