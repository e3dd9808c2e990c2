"""What the mail tests share: sample messages, MIME builders, the shared corpus."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "mail-parser"
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


#: Message-like bytes: a few header lines (some malformed), a separator, a body.
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
