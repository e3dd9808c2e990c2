"""ct_alias.mail._summary: what a message summary holds, on hostile input and a real corpus."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.parser import BytesParser
from pathlib import Path

import pytest

from ct_alias.errors import InvalidArgument
from ct_alias.mail import (
    MessageSummary,
    format_address,
    parse_headers,
    rewrite_headers,
    split_message,
    summarize,
)

from .support import CORPUS, CORPUS_FILES, clean, message, mime

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
