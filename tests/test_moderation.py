"""Moderation's parts: the view (what a moderator never sees), verdicts, the shipped rules."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ct_alias.errors import InvalidArgument, ModeratorFailed
from ct_alias.mail import MAX_DEPTH
from ct_alias.mail._content import _ADDRESS
from ct_alias.moderation import (
    ADDRESS,
    ALIAS,
    Action,
    MessageView,
    Verdict,
    moderate,
    moderator_name,
)
from ct_alias.moderators import (
    DEFAULT_MAX_ATTACHMENT,
    AttachmentSize,
    AttachmentTypes,
    Contact,
    ContactDetails,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mail-parser"
CORPUS_FILES = (
    sorted(p for p in CORPUS.glob("*") if p.suffix in {".eml", ".msg"}) if CORPUS.is_dir() else []
)
REAL = "maria.silva@example.com.br"


def mail(*headers: str, body: bytes = b"Hello.\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def multipart(*parts: bytes, boundary: str = "b0") -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return mail(
        "Subject: parts", f'Content-Type: multipart/mixed; boundary="{boundary}"', body=body
    )


def attachment(name: str, content_type: str, payload: bytes) -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + encoded


def text_part(text: str, subtype: str = "plain") -> bytes:
    return f"Content-Type: text/{subtype}; charset=utf-8\r\n\r\n{text}".encode()


def view_of(data: bytes) -> MessageView:
    return MessageView.read(data, alias_domains=["ct.example.com"])


def everything(view: MessageView) -> str:
    return repr(view) + view.text + repr(view.headers) + repr(view.links)


# -- the view: what a moderator never learns ---------------------------------------


def test_the_view_holds_no_address_and_no_address_field() -> None:
    data = mail(
        f"From: Maria <{REAL}>",
        "To: 1abc@ct.example.com",
        f"Reply-To: {REAL}",
        "Received: from mx.provider.example (10.0.0.1)",
        "Message-ID: <x1@provider.example>",
        f"Subject: pedido de {REAL}",
        "Content-Type: text/html; charset=utf-8",
        body=(
            f'<p>Oi, sou <a href="mailto:{REAL}">{REAL}</a>; a loja é '
            "vendas@ct.example.com ou maria (at) gmail (dot) com "
            "ou maria arroba gmail ponto com</p>"
        ).encode(),
    )
    view = view_of(data)
    seen = everything(view).lower()
    assert "maria.silva" not in seen
    assert "example.com.br" not in seen
    assert "provider.example" not in seen
    assert "10.0.0.1" not in seen
    assert "gmail" not in seen
    assert {name.lower() for name, _ in view.headers} == {"subject", "content-type"}
    assert view.subject == f"pedido de {ADDRESS}"
    assert view.links == (f"mailto:{ADDRESS}",)
    assert ALIAS in view.texts[0]
    # the subject, the link, the shown address, two spelled ones; the alias does not count
    assert view.addresses == 5


def test_addresses_in_any_spelling_are_replaced() -> None:
    for spelling in (
        "maria@example.com",
        "maria @ example.com",
        "maria\uff20example.com",
        "Maria.Silva+loja@sub.example.co.uk",
        "maria[at]example[dot]com",
        "maria {at} example {dot} com",
        "MARIA (AT) EXAMPLE (DOT) COM",
    ):
        view = view_of(mail("Subject: x", body=f"fale com {spelling} hoje".encode()))
        assert view.texts == (f"fale com {ADDRESS} hoje",), spelling
        assert view.addresses == 1


def test_ordinary_text_is_not_an_address() -> None:
    view = view_of(mail("Subject: x", body=b"Meet at school. See you at 10. Tudo certo @ loja"))
    assert view.addresses == 0
    assert view.texts == ("Meet at school. See you at 10. Tudo certo @ loja",)


def test_attachments_are_described_never_decoded() -> None:
    payload = b"%PDF-1.4 " + b"x" * 3000
    data = multipart(text_part("see attached"), attachment("nota.pdf", "application/pdf", payload))
    view = view_of(data)
    (part,) = view.attachments
    assert (part.content_type, part.filename, part.inline) == ("application/pdf", "nota.pdf", False)
    assert abs(part.size - len(payload)) <= 2
    assert view.texts == ("see attached",)
    assert view.size == len(data)


def test_html_gives_visible_text_and_links() -> None:
    html = '<style>p{}</style><p>Chama <a href="https://wa.me/5511987654321">aqui</a></p>'
    view = view_of(multipart(text_part("oi"), text_part(html, "html")))
    assert view.texts == ("oi", "Chama aqui")
    assert view.links == ("https://wa.me/5511987654321",)


def test_the_view_is_frozen() -> None:
    view = view_of(mail("Subject: x"))
    with pytest.raises(AttributeError):
        view.texts = ("rewritten",)  # type: ignore[misc]


# -- verdicts and moderate() -------------------------------------------------------


def test_verdicts_need_a_readable_reason_without_addresses() -> None:
    assert Verdict.allow() == Verdict(Action.ALLOW, "")
    assert Verdict.flag("  phone\r\nnumber ") == Verdict(Action.FLAG, "phone number")
    assert Verdict.refuse(f"quotes {REAL}").reason == f"quotes {ADDRESS}"
    assert len(Verdict.flag("x" * 1000).reason) == 200
    for bad in ("", "   ", None, 3):
        with pytest.raises(InvalidArgument):
            Verdict.flag(bad)  # type: ignore[arg-type]


def test_a_verdict_made_directly_is_cleaned_too() -> None:
    """No line break from a moderator ever reaches an SMTP reply."""
    injected = Verdict(Action.REFUSE, "spam\r\n250 2.0.0 OK\r\nRCPT TO:<x@example.org>")
    assert injected.reason == f"spam 250 2.0.0 OK RCPT TO:<{ADDRESS}>"
    assert Verdict("flag", "ok").action is Action.FLAG
    with pytest.raises(InvalidArgument):
        Verdict(Action.FLAG)
    with pytest.raises(InvalidArgument):
        Verdict("drop", "x")


def test_moderate_collects_flags_and_stops_at_the_first_refusal() -> None:
    calls: list[str] = []

    def first(view: MessageView) -> Verdict:
        calls.append("first")
        return Verdict.flag("one")

    def second(view: MessageView) -> Verdict:
        calls.append("second")
        return Verdict.refuse("two")

    def third(view: MessageView) -> Verdict:
        calls.append("third")
        return Verdict.allow()

    judgement = moderate(view_of(mail("Subject: x")), [first, second, third])
    assert calls == ["first", "second"]
    assert [f.reason for f in judgement.flags] == ["one"]
    assert judgement.refusal is not None
    assert (judgement.refusal.moderator, judgement.refusal.reason) == ("second", "two")
    assert moderate(view_of(mail("Subject: x")), [third]).findings == ()


def test_a_failing_moderator_is_a_typed_error_without_its_text() -> None:
    def broken(view: MessageView) -> Verdict:
        raise KeyError(REAL)

    def confused(view: MessageView) -> Verdict:
        return "refuse"  # type: ignore[return-value]

    with pytest.raises(ModeratorFailed) as raised:
        moderate(view_of(mail("Subject: x")), [broken])
    assert (raised.value.moderator, raised.value.cause) == ("broken", "KeyError")
    assert REAL not in str(raised.value)
    with pytest.raises(ModeratorFailed, match="returned str"):
        moderate(view_of(mail("Subject: x")), [confused])


def test_moderator_names() -> None:
    assert moderator_name(ContactDetails()) == "contact-details"
    assert moderator_name(lambda v: Verdict.allow()) == "<lambda>"
    assert moderator_name(str.upper) == "str.upper"
    assert moderator_name(type("Rule", (), {"name": " shop\nrule "})()) == "shop rule"


# -- the shipped moderators --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "allowed"),
    [
        ("foto.jpg", "image/jpeg", True),
        ("nota.PDF", "application/pdf", True),
        ("scan", "image/png", True),
        ("nota.pdf.exe", "application/pdf", False),
        ("run.bat", "text/plain", False),
        ("setup.exe", "application/octet-stream", False),
        ("page.html", "image/png", False),
        ("planilha.xlsx", "application/vnd.ms-excel", False),
        ("arquivo.zip", "application/zip", False),
    ],
)
def test_attachment_types(name: str, content_type: str, allowed: bool) -> None:
    view = view_of(multipart(text_part("x"), attachment(name, content_type, b"data")))
    verdict = AttachmentTypes()(view)
    if allowed:
        assert verdict == Verdict.allow()
    else:
        assert verdict.action is Action.REFUSE
        assert verdict.reason.startswith("attachment type not allowed: ")


def test_attachment_types_configured() -> None:
    view = view_of(multipart(attachment("a.zip", "application/zip", b"PK")))
    assert AttachmentTypes(["application/*"])(view) == Verdict.allow()
    assert AttachmentTypes(["image/*"], action=Action.FLAG)(view).action is Action.FLAG
    assert AttachmentTypes()(view_of(mail("Subject: none"))) == Verdict.allow()
    for bad in ("image/png", ["png"], ["image/png; q=1"]):
        with pytest.raises(InvalidArgument):
            AttachmentTypes(bad)
    with pytest.raises(InvalidArgument):
        AttachmentTypes(action=Action.ALLOW)


def test_attachment_size() -> None:
    view = view_of(multipart(attachment("big.png", "image/png", b"x" * 5000)))
    assert AttachmentSize(5000)(view) == Verdict.allow()
    verdict = AttachmentSize(4999)(view)
    assert verdict.action is Action.REFUSE
    assert verdict.reason == "attachment larger than 4999 bytes: image/png (big.png), 5000 bytes"
    assert AttachmentSize(4096)(view).reason.startswith("attachment larger than 4 KiB:")
    assert AttachmentSize()(view) == Verdict.allow()
    assert DEFAULT_MAX_ATTACHMENT == 10 * 1024 * 1024
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgument):
            AttachmentSize(bad)


@pytest.mark.parametrize(
    "text",
    [
        "me liga (11) 98765-4321",
        "whats +55 11 98765-4321",
        "+55 (11) 9 8765-4321",
        "fixo 011 3456-7890",
        "11987654321",
        "5511987654321",
        "só o número 98765-4321",
        "call +44 20 7946 0958",
        "+1 (415) 555-2671",
    ],
)
def test_phone_numbers_are_found(text: str) -> None:
    assert ContactDetails().found(view_of(mail("Subject: x", body=text.encode()))) == [
        Contact.PHONE
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Pedido 207700027841 enviado",
        "CPF 123.456.789-09",
        "CNPJ 12.345.678/0001-90",
        "CEP 01310-100",
        "Total R$ 1.234.567,89",
        "rastreio BR123456789BR",
        "nota 35240112345678000190550010000012341000012345",
        "em 2026-11-30 às 10:30",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert ContactDetails().found(view_of(mail("Subject: x", body=text.encode()))) == []


@pytest.mark.parametrize(
    "text",
    [
        "https://wa.me/5511987654321",
        "chama em api.whatsapp.com/send?phone=1",
        "grupo chat.whatsapp.com/AbC",
        "t.me/lojinha",
        "http://m.me/loja",
        "whatsapp://send?text=oi",
        "telegram.me/loja",
    ],
)
def test_messaging_links_are_found(text: str) -> None:
    view = view_of(mail("Subject: x", body=text.encode()))
    assert Contact.MESSAGING in ContactDetails().found(view)


def test_words_that_merely_contain_a_messaging_domain() -> None:
    view = view_of(mail("Subject: x", body=b"start.me up; format.message; at.me"))
    assert ContactDetails().found(view) == []


def test_contact_details_flags_by_default_and_names_no_detail() -> None:
    view = view_of(mail("Subject: x", body=f"{REAL} (11) 98765-4321 wa.me/1".encode()))
    verdict = ContactDetails()(view)
    assert verdict == Verdict.flag(
        "contact details in the message: an e-mail address, a phone number, a messaging app link"
    )
    assert "9876" not in verdict.reason
    assert ContactDetails(action=Action.REFUSE)(view).action is Action.REFUSE
    only_links = ContactDetails(kinds={Contact.MESSAGING})(view)
    assert only_links.reason == "contact details in the message: a messaging app link"
    assert ContactDetails()(view_of(mail("Subject: x", body=b"obrigada!"))) == Verdict.allow()


def test_aliases_are_not_contact_details() -> None:
    quoted = b"On Monday, Loja <1abcdef@ct.example.com> wrote:\r\n> seu pedido\r\n"
    assert ContactDetails()(view_of(mail("Subject: Re: x", body=quoted))) == Verdict.allow()


def test_links_in_html_are_checked() -> None:
    html = '<p><a href="https://api.whatsapp.com/send?phone=5511987654321">fale</a></p>'
    view = view_of(multipart(text_part(html, "html")))
    assert ContactDetails().found(view) == [Contact.PHONE, Contact.MESSAGING]


# -- hostile input ------------------------------------------------------------------


def _fast(data: bytes) -> MessageView:
    """The view of ``data``, after every shipped moderator has judged it.

    What bounds the work is structural (the view reads at most so many
    characters, parts and levels: the tests assert it); what it costs is the
    ``moderation`` benchmark's business, not a timed assertion here.
    """
    view = view_of(data)
    for moderator in (AttachmentTypes(), AttachmentSize(), ContactDetails()):
        assert moderator(view).reason.isprintable()
    return view


@pytest.mark.parametrize(
    "body",
    [
        b"a" * 500_000 + b" @",  # a long run before an "@" (quadratic for a naive pattern)
        b"a@" * 200_000,
        b"@" * 500_000,
        b"1 " * 300_000,
        b"1-" * 300_000,
        b"9" * 500_000,
        b"(1" * 300_000,
        b"t.me" * 200_000,
        b"a (at) " * 100_000,
        b"a.b" * 200_000 + b"@",
        b"x" * 64 + b"@" + b"y." * 300_000,
    ],
    ids=lambda b: repr(b[:12]),
)
def test_adversarial_text_is_read_only_so_far(body: bytes) -> None:
    view = _fast(mail("Subject: x", body=body))
    assert view.truncated  # at most 100,000 characters were read


def test_a_huge_subject_is_bounded_too() -> None:
    _fast(mail("Subject: " + "a" * 100_000 + " @ " + "1-" * 30_000))


def test_deep_nesting_and_many_parts() -> None:
    nested = text_part("fundo (11) 98765-4321")
    for depth in range(MAX_DEPTH + 5):
        boundary = f"n{depth}"
        nested = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode()
            + nested
            + f"\r\n--{boundary}--\r\n".encode()
        )
    view = _fast(b"Subject: deep\r\n" + nested)
    assert any("nested deeper" in d for d in view.defects)
    many = multipart(*[attachment(f"{i}.png", "image/png", b"x") for i in range(3000)])
    view = _fast(many)
    assert len(view.attachments) <= 1000


def test_bad_encodings_do_not_break_the_view() -> None:
    parts = [
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe (11) 98765-4321",
        (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"!!!not base64!!!"
        ),
        b"Content-Type: text/plain; charset=idna\r\n\r\n\xc3\x28",
        b"Content-Type: text/html\r\n\r\n<![x <a href='t.me/x'>",
    ]
    view = _fast(multipart(*parts))
    assert len(view.texts) == 4
    assert ContactDetails().found(view) == [Contact.PHONE]


@pytest.mark.skipif(not CORPUS_FILES, reason="the mail-parser corpus is not available")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    data = path.read_bytes()
    view = _fast(data)
    for moderator in (AttachmentTypes(), AttachmentSize(), ContactDetails()):
        verdict = moderator(view)
        assert verdict.reason.isprintable()
    if path.suffix == ".eml":  # a .msg has no header: the relay refuses it before moderation
        assert not _ADDRESS.search(everything(view))
