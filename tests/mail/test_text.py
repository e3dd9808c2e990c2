"""ct_alias.mail._text: first words, from plain text or HTML, in any charset and encoding."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from ct_alias.mail import (
    summarize,
)

from .support import message


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
