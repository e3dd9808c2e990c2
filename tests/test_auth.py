"""Sender authentication: Authentication-Results of a trusted MTA, DKIM in process."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from ct_alias.auth import (  # the private reader is checked against authres
    DKIM,
    Authentication,
    AuthenticationResults,
    Unauthenticated,
    Verdict,
    _simple_results,
    aligned,
)
from ct_alias.errors import ConfigurationError
from ct_alias.mail import parse_headers, split_message

MTA = "mx.ct.example.com"


def verdict_of(authenticator: object, *lines: str, from_domain: str) -> Authentication:
    data = ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()
    fields = parse_headers(split_message(data).headers)
    verdict: Authentication = authenticator.authenticate(  # type: ignore[attr-defined]
        fields, data, from_domain=from_domain
    )
    return verdict


@pytest.mark.parametrize(
    ("vouching", "author", "expected"),
    [
        ("example.com", "example.com", True),
        ("example.com", "news.example.com", True),
        ("Example.COM.", "news.example.com", True),
        ("news.example.com", "example.com", False),  # a child never speaks for its parent
        ("ample.com", "example.com", False),  # a label boundary, not a substring
        ("", "example.com", False),
        ("evil.example", "example.com", False),
    ],
)
def test_alignment(vouching: str, author: str, expected: bool) -> None:
    assert aligned(vouching, author) is expected


# -- Authentication-Results ------------------------------------------------------------


@pytest.fixture
def ar() -> AuthenticationResults:
    return AuthenticationResults(MTA)


def test_dmarc_pass_of_the_from_domain(ar: AuthenticationResults) -> None:
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dmarc=pass header.from=loja.example.com",
        from_domain="loja.example.com",
    )
    assert found == Authentication(Verdict.PASS, "loja.example.com", "dmarc")
    assert found.passed
    assert found.vouches_for("loja.example.com")
    assert not found.vouches_for("evil.example")
    assert found.to_dict() == {"verdict": "pass", "method": "dmarc", "domain": "loja.example.com"}


def test_dmarc_pass_of_another_domain_is_no_pass(ar: AuthenticationResults) -> None:
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dmarc=pass header.from=evil.example",
        from_domain="loja.example.com",
    )
    assert found.verdict is Verdict.NONE


def test_only_the_topmost_field_of_the_mta_counts(ar: AuthenticationResults) -> None:
    # the sender wrote a passing field with our id; the MTA's own (topmost) says fail
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dmarc=fail header.from=loja.example.com",
        f"Authentication-Results: {MTA}; dmarc=pass header.from=loja.example.com",
        from_domain="loja.example.com",
    )
    assert found.verdict is Verdict.FAIL
    # another authserv-id (the sender's own server, or a forger) is never read
    found = verdict_of(
        ar,
        "Authentication-Results: mx.evil.example; dmarc=pass header.from=loja.example.com",
        from_domain="loja.example.com",
    )
    assert found.verdict is Verdict.NONE


def test_authserv_id_is_case_insensitive(ar: AuthenticationResults) -> None:
    found = verdict_of(
        ar,
        "Authentication-Results: MX.CT.Example.com; dkim=pass header.d=loja.example.com",
        from_domain="loja.example.com",
    )
    assert found == Authentication(Verdict.PASS, "loja.example.com", "dkim")


def test_aligned_dkim_and_spf(ar: AuthenticationResults) -> None:
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dkim=pass header.d=example.com; "
        "spf=pass smtp.mailfrom=bounce@news.example.com",
        from_domain="news.example.com",
    )
    assert found == Authentication(Verdict.PASS, "example.com", "dkim")
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dkim=fail header.d=news.example.com; "
        "spf=pass smtp.mailfrom=bounce@news.example.com",
        from_domain="news.example.com",
    )
    assert found == Authentication(Verdict.PASS, "news.example.com", "spf")


def test_unaligned_passes_are_not_a_pass(ar: AuthenticationResults) -> None:
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dkim=pass header.d=mailer.example; "
        "spf=pass smtp.mailfrom=x@mailer.example",
        from_domain="loja.example.com",
    )
    assert found.verdict is Verdict.NONE
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dkim=fail header.d=loja.example.com",
        from_domain="loja.example.com",
    )
    assert found.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    "line",
    [
        f"Authentication-Results: {MTA}; none",
        f"Authentication-Results: {MTA}; ((((((",
        "Authentication-Results: ;;;",
        f"Authentication-Results: {MTA}; arc=pass",
        "Subject: no field at all",
    ],
)
def test_nothing_readable_is_no_verdict(ar: AuthenticationResults, line: str) -> None:
    assert verdict_of(ar, line, from_domain="loja.example.com").verdict is Verdict.NONE


def test_configuration() -> None:
    with pytest.raises(ConfigurationError):
        AuthenticationResults("  ")
    assert repr(AuthenticationResults(" MX.Example.com ")) == (
        "AuthenticationResults(authserv_id='mx.example.com')"
    )
    assert verdict_of(Unauthenticated(), "From: a@b.example", from_domain="b.example") == (
        Authentication(Verdict.NONE)
    )


# -- DKIM, verified in process with keys made here and DNS in a dict --------------------


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    """A fresh RSA key: (PEM private key, the ``p=`` value of its DNS record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(public)


@pytest.fixture
def dns(rsa_key: tuple[bytes, bytes]) -> Callable[[bytes], bytes | None]:
    records = {b"sel._domainkey.transportadora.example.net.": b"v=DKIM1; k=rsa; p=" + rsa_key[1]}
    return lambda name: records.get(name if name.endswith(b".") else name + b".")


def signed(pem: bytes, domain: str, *lines: str) -> bytes:
    import dkim  # type: ignore[import-untyped]

    data = ("\r\n".join(lines) + "\r\n\r\nSua entrega chega amanha.\r\n").encode()
    signature: bytes = dkim.sign(
        data, b"sel", domain.encode(), pem, include_headers=[b"from", b"subject", b"to"]
    )
    return signature + data


def dkim_verdict(dns: Callable[[bytes], bytes | None], data: bytes, author: str) -> Authentication:
    fields = parse_headers(split_message(data).headers)
    return DKIM(dns=dns).authenticate(fields, data, from_domain=author)


def test_dkim_pass(rsa_key: tuple[bytes, bytes], dns: Callable[[bytes], bytes | None]) -> None:
    data = signed(
        rsa_key[0],
        "transportadora.example.net",
        "From: rastreio@transportadora.example.net",
        "To: someone@ct.example.com",
        "Subject: Entrega",
    )
    found = dkim_verdict(dns, data, "transportadora.example.net")
    assert found == Authentication(Verdict.PASS, "transportadora.example.net", "dkim")


def test_dkim_tampered_is_a_fail(
    rsa_key: tuple[bytes, bytes], dns: Callable[[bytes], bytes | None]
) -> None:
    data = signed(
        rsa_key[0],
        "transportadora.example.net",
        "From: rastreio@transportadora.example.net",
        "Subject: Entrega",
    )
    tampered = data.replace(b"Subject: Entrega", b"Subject: Pague aqui")
    assert dkim_verdict(dns, tampered, "transportadora.example.net").verdict is Verdict.FAIL
    no_key = dkim_verdict(lambda name: None, data, "transportadora.example.net")
    assert no_key.verdict is Verdict.FAIL


def test_dkim_of_another_domain_vouches_for_nothing(
    rsa_key: tuple[bytes, bytes], dns: Callable[[bytes], bytes | None]
) -> None:
    # a valid signature by the carrier on mail claiming to be from the store
    data = signed(
        rsa_key[0],
        "transportadora.example.net",
        "From: vendas@loja.example.com",
        "Subject: Entrega",
    )
    assert dkim_verdict(dns, data, "loja.example.com").verdict is Verdict.NONE
    unsigned = b"From: rastreio@transportadora.example.net\r\n\r\nhi\r\n"
    assert dkim_verdict(dns, unsigned, "transportadora.example.net").verdict is Verdict.NONE


# -- the fast reader agrees with authres ---------------------------------------------

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
DOMAIN_NAME = st.lists(WORD, min_size=1, max_size=3).map(".".join)
TOKEN = st.one_of(
    DOMAIN_NAME,
    st.tuples(WORD, DOMAIN_NAME).map("@".join),
    DOMAIN_NAME.map("@{}".format),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_+", min_size=1, max_size=12),
)
COMMENT = st.sampled_from(
    ["", " (p=none dis=none)", " (mx: domain of x designates 1.2.3.4)", " ()"]
)


@st.composite
def result_texts(draw: st.DrawFn) -> str:
    method = draw(st.sampled_from(["dkim", "spf", "dmarc", "arc", "iprev", "auth", "x-test"]))
    result = draw(st.sampled_from(["pass", "fail", "none", "neutral", "permerror", "softfail"]))
    words = [f"{method}={result}{draw(COMMENT)}"]
    if draw(st.booleans()):
        words.append(f"reason={draw(WORD)}")
    for _ in range(draw(st.integers(0, 3))):
        ptype = draw(st.sampled_from(["header", "smtp", "policy", "body"]))
        name = draw(st.sampled_from(["d", "i", "from", "mailfrom", "helo", "b", "s"]))
        words.append(f"{ptype}.{name}={draw(TOKEN)}{draw(COMMENT)}")
    return " ".join(words)


@st.composite
def field_values(draw: st.DrawFn) -> str:
    ident = draw(st.sampled_from(["mx.ct.example.com", "MX.Example.org", "mx.ct.example.com 1"]))
    results = draw(st.lists(result_texts(), max_size=4))
    return "; ".join([ident + draw(COMMENT), *results]) if results else f"{ident}; none"


def by_authres(value: str) -> list[tuple[str, str, dict[tuple[str, str], str]]] | None:
    import authres  # type: ignore[import-untyped]

    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
    except (authres.AuthResError, ValueError, IndexError):
        return None
    return [
        (
            str(r.method).lower(),
            str(r.result).lower(),
            {(p.type.lower(), p.name.lower()): str(p.value) for p in r.properties},
        )
        for r in header.results
    ]


@given(field_values())
def test_the_fast_reader_agrees_with_authres_on_mta_fields(value: str) -> None:
    fast = _simple_results(value)
    assert fast is not None  # every field of this plain shape is read without authres
    assert fast == by_authres(value)


@given(
    st.one_of(
        field_values().map(lambda v: v.replace(" ", "  ")),
        field_values().map(lambda v: v.replace("=", " = ", 1)),
        field_values().map(lambda v: v.replace("; ", ';"x"; ', 1)),
        st.text(max_size=80),
        st.text(alphabet='abc=.;() @/\\"', max_size=60),
    )
)
def test_the_fast_reader_never_disagrees(value: str) -> None:
    fast = _simple_results(value)
    if fast is not None:
        assert fast == by_authres(value)


def test_an_international_domain_is_compared_in_its_ascii_form(ar: AuthenticationResults) -> None:
    idna = "transportes-ação.example".encode("idna").decode()
    found = verdict_of(
        ar,
        f"Authentication-Results: {MTA}; dmarc=pass header.from={idna.upper()}",
        from_domain=idna,
    )
    assert found == Authentication(Verdict.PASS, idna, "dmarc")


# -- each rule of the verdict, one at a time -------------------------------------------


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        # a DMARC result that is not a pass does not hide an aligned DKIM pass
        (
            "dmarc=none header.from=loja.example.com; dkim=pass header.d=loja.example.com",
            Authentication(Verdict.PASS, "loja.example.com", "dkim"),
        ),
        ("dmarc=pass", Authentication(Verdict.NONE)),  # no header.from: vouches for nothing
        (
            "dkim=pass header.i=@loja.example.com",
            Authentication(Verdict.PASS, "loja.example.com", "dkim"),
        ),
        (
            "spf=pass smtp.helo=loja.example.com",
            Authentication(Verdict.PASS, "loja.example.com", "spf"),
        ),
        ("dkim=permerror header.d=loja.example.com", Authentication(Verdict.FAIL)),
        ("spf=softfail smtp.mailfrom=x@loja.example.com", Authentication(Verdict.NONE)),
        # DKIM is preferred to SPF even when SPF's domain is the wider one
        (
            "spf=pass smtp.mailfrom=b@example.com; dkim=pass header.d=loja.example.com",
            Authentication(Verdict.PASS, "loja.example.com", "dkim"),
        ),
    ],
)
def test_verdict_rules(ar: AuthenticationResults, results: str, expected: Authentication) -> None:
    line = f"Authentication-Results: {MTA}; {results}"
    assert verdict_of(ar, line, from_domain="loja.example.com") == expected


@pytest.mark.parametrize(
    "value",
    [
        f"{MTA} 1 2; dmarc=pass header.from=loja.example.com",  # two versions
        f"{MTA}; dkim=pass header.=loja.example.com",  # a property with no name
        f"{MTA}; dkim=pass header.d=@",  # an address with no domain
        f"{MTA}; dkim=pass foo=bar",  # a bare word that is not a reason
        f"{MTA}; dkim=pass reason=a@b",
        f'{MTA}; dkim=pass reason="a b" header.d=loja.example.com',  # a quoted string
        f"{MTA}; dkim=pass (unclosed header.d=loja.example.com",
        f"{MTA}; dkim=pass header.d=loja.example.com )",
        f"{MTA}; dkim=pass=x header.d=loja.example.com",
    ],
)
def test_the_fast_reader_leaves_the_unusual_to_authres(value: str) -> None:
    assert _simple_results(value) is None


def test_trailing_dots_align() -> None:
    assert aligned("example.com.", "news.example.com.")
    assert aligned("Example.COM", "news.example.com")
    assert not aligned("example.com.", "example.org")


def test_dkim_tries_every_aligned_signature(
    rsa_key: tuple[bytes, bytes], dns: Callable[[bytes], bytes | None]
) -> None:
    """A broken first signature (or one of another domain) does not hide a good one below."""
    import dkim

    good = signed(
        rsa_key[0],
        "transportadora.example.net",
        "From: rastreio@transportadora.example.net",
        "Subject: Entrega",
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    broken = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # a second signature on top, by a key the DNS does not publish
    on_top: bytes = dkim.sign(
        good, b"sel", b"transportadora.example.net", broken, include_headers=[b"from"]
    )
    data = on_top + good
    found = dkim_verdict(dns, data, "transportadora.example.net")
    assert found == Authentication(Verdict.PASS, "transportadora.example.net", "dkim")
