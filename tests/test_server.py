"""End to end: an smtplib client -> `ct-alias serve` -> an aiosmtpd sink standing in for the MTA."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from ct_alias.mail import split_message
from ct_alias.server import wire_lines

from .smtp_support import Serve, Sink, cli, free_port, message

KEYS = "vlp6iLFE1OrE-17mzjN7cYVxPZE0LPfBxyGUUhZ-yqo"
DOMAIN = "ct.example.com"
CUSTOMER = "maria@example.com.br"
CARRIER = "rastreio@transportadora.example.net"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "CT_ALIAS_DB": f"sqlite:///{tmp_path / 'relay.db'}",
        "CT_ALIAS_KEYS": KEYS,
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_INDEX_KEY": "server-test-index",
    }
    cli(environment, "db", "upgrade")
    return environment


@pytest.fixture
def serve(env: dict[str, str], sink: tuple[Sink, int]) -> Iterator[Serve]:
    server = Serve(env, sink[1])
    yield server
    server.kill()


def test_relays_end_to_end(env: dict[str, str], sink: tuple[Sink, int], serve: Serve) -> None:
    alias = cli(env, "mask", CUSTOMER, "--conversation", "order-1")
    body = b"Line one.\r\n\r\n--\r\nBinary-ish: \xc3\xa9\xff\r\n.leading dot\r\n"
    data = message(f"Carrier <{CARRIER}>", alias, body)
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
        client.ehlo("client.test")
        assert client.has_extn("size")
        assert client.has_extn("smtputf8")
        refused = client.sendmail(CARRIER, [alias], data)
    assert refused == {}
    ((mail_from, rcpt_tos, delivered),) = sink[0].received
    assert rcpt_tos == [CUSTOMER]
    assert mail_from.endswith("@" + DOMAIN)
    assert split_message(delivered).body == split_message(data).body  # byte for byte
    assert CARRIER.encode() not in split_message(delivered).headers
    timeline = cli(env, "timeline", "order-1", "--json")
    assert '"direction": "outbound"' in timeline
    assert serve.stop() == 0


def test_refuses_at_rcpt(env: dict[str, str], sink: tuple[Sink, int], serve: Serve) -> None:
    alias = cli(env, "mask", CUSTOMER, "--conversation", "order-1")
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(CARRIER)
        code, _ = client.rcpt("victim@elsewhere.example.org")
        assert code == 550
        code, text = client.rcpt("1" + "0" * 39 + "@" + DOMAIN)
        assert code == 550
        assert b"5.1.1" in text
        code, _ = client.rcpt(alias)
        assert code == 250
        code, _ = client.data(message(CARRIER, alias))
        assert code == 250
    assert len(sink[0].received) == 1
    assert sink[0].received[0][1] == [CUSTOMER]


def test_size_is_enforced(env: dict[str, str], sink: tuple[Sink, int], serve: Serve) -> None:
    alias = cli(env, "mask", CUSTOMER, "--conversation", "order-1")
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
        client.ehlo("client.test")
        assert int(client.esmtp_features["size"]) == 100000
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail(
                CARRIER,
                [alias],
                message(CARRIER, alias, b"x" * 200_000),
                mail_options=["SIZE=200100"],
            )
        assert info.value.smtp_code == 552
    assert sink[0].received == []


def test_downstream_down_is_451_and_nothing_is_lost(env: dict[str, str]) -> None:
    alias = cli(env, "mask", CUSTOMER, "--conversation", "order-1")
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    server = Serve(env, port)
    controller.stop()  # the downstream goes away after start-up
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.ehlo("client.test")
            client.mail(CARRIER)
            assert client.rcpt(alias)[0] == 250
            code, text = client.data(message(CARRIER, alias))
        assert code == 451
        assert b"4.4.1" in text
    finally:
        assert server.stop() == 0


def test_smtputf8(env: dict[str, str], sink: tuple[Sink, int], serve: Serve) -> None:
    alias = cli(env, "mask", "joão@exemplo.com.br", "--conversation", "order-2")
    data = message("Remetente <remetente@example.org>", alias, "Olá, João.\r\n".encode())
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("remetente@example.org", [alias], data, mail_options=["SMTPUTF8"])
    ((_, rcpt_tos, _),) = sink[0].received
    assert rcpt_tos == ["joão@exemplo.com.br"]


@pytest.mark.parametrize(
    "hostile",
    [
        b"X-Note: caf\xe9",  # raw 8-bit, not UTF-8
        b"Reply-To: a@xn--zz--.com\r\nSender: secretaria@transportadora.example.net",
    ],
    ids=["8bit-header", "invalid-idna-reply-to"],
)
def test_hostile_header_bytes_get_a_clean_reply(
    env: dict[str, str], sink: tuple[Sink, int], serve: Serve, hostile: bytes
) -> None:
    """Bytes that once crashed ``Relay.handle`` are relayed on the wire, leaking nothing."""
    alias = cli(env, "mask", CUSTOMER, "--conversation", "order-1")
    data = (
        f"From: Carrier <{CARRIER}>\r\n".encode()
        + hostile
        + f"\r\nTo: {alias}\r\nSubject: test\r\n".encode()
        + b"Message-ID: <hostile-bytes@test>\r\n\r\n"
        + b"Hello.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(CARRIER)
        assert client.rcpt(alias)[0] == 250
        code, text = client.data(data)
    assert code == 250, text
    ((mail_from, rcpt_tos, delivered),) = sink[0].received
    assert rcpt_tos == [CUSTOMER]
    assert mail_from.endswith("@" + DOMAIN)
    assert b"secretaria@" not in delivered.lower()
    assert CARRIER.encode() not in split_message(delivered).headers.lower()
    assert split_message(delivered).body == b"Hello.\r\n"
    assert serve.stop() == 0


# -- as an attacker and a postmaster see it: hostile bytes, smuggling, its logs ---------

# generated with `ct-alias keys generate` for these tests only
ADDRESS_KEY = "Zq3v8N1xW5tY2uB7cE4rM9kP0sL6jH3gF8dA1oI5yT2"
MTA = "mx.ct.example.com"
TRUST_CUSTOMER = "maria.silva@example.com.br"
SECRETS = ("maria.silva", "example.com.br", "rastreio", "transportadora", "198.51.100.77")


@pytest.fixture
def keyed_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "CT_ALIAS_ADDRESS_KEYS": ADDRESS_KEY, "CT_ALIAS_AUTHSERV_ID": MTA}


@pytest.fixture
def keyed_serve(keyed_env: dict[str, str], sink: tuple[Sink, int]) -> Iterator[Serve]:
    server = Serve(keyed_env, sink[1])
    yield server
    if server.process.poll() is None:
        server.process.kill()
    server.process.communicate(timeout=30)


def send(
    port: int, sender: str, recipients: list[str], data: bytes
) -> dict[str, tuple[int, bytes | str]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        try:
            return dict(client.sendmail(sender, recipients, data))
        except smtplib.SMTPDataError as exc:
            return {"data": (exc.smtp_code, exc.smtp_error)}


def test_the_whole_output_of_serve_names_no_real_address(
    keyed_env: dict[str, str], sink: tuple[Sink, int], keyed_serve: Serve
) -> None:
    customer = cli(keyed_env, "mask", TRUST_CUSTOMER, "--conversation", "order-1")
    carrier_mail = (
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"
        f"From: Transportadora <{CARRIER}>\r\nTo: {customer}\r\nSubject: Entrega\r\n"
        "Message-ID: <t1@transportadora.example.net>\r\n\r\nAmanha.\r\n"
    ).encode()
    assert send(keyed_serve.port, CARRIER, [customer], carrier_mail) == {}
    (_, _, delivered), *_ = sink[0].received
    contact = next(
        line.split(b"<")[1].split(b">")[0].decode()
        for line in split_message(delivered).headers.split(b"\r\n")
        if line.startswith(b"From:")
    )
    reply = (
        "Received: from maria-laptop ([198.51.100.77]) by mx.example.com.br\r\n"
        f"Authentication-Results: {MTA}; dmarc=pass header.from=example.com.br\r\n"
        f"From: Maria <{TRUST_CUSTOMER}>\r\nTo: {contact}\r\nSubject: Re: Entrega\r\n"
        "X-Note: caf\xe9\r\n"
        "\r\nObrigada.\r\n"
    ).encode("latin-1")
    assert send(keyed_serve.port, TRUST_CUSTOMER, [contact], reply) == {}
    # a stranger probes and forges: refusals are logged by alias and code only
    forged = f"From: Loja <vendas@loja.example.com>\r\nTo: {customer}\r\n\r\nPague.\r\n"
    assert send(keyed_serve.port, "x@evil.example", [customer], forged.encode()) == {}
    with smtplib.SMTP("127.0.0.1", keyed_serve.port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(TRUST_CUSTOMER)
        assert client.rcpt(f"nobody@{DOMAIN}")[0] == 550
        assert client.rcpt(f"unverified-sender@{DOMAIN}")[0] == 550
    assert len(sink[0].received) == 3
    _, _, to_carrier = sink[0].received[1]
    headers = split_message(to_carrier).headers.decode("utf-8", "replace").lower()
    for secret in ("maria.silva", "example.com.br", "198.51.100.77", "maria-laptop"):
        assert secret not in headers
    assert keyed_serve.stop() == 0
    output = keyed_serve.stderr.lower()  # every log line (stdout has only the "listening" line)
    assert "relayed" in output or "accepted" in output  # it does log, at INFO
    for secret in SECRETS:
        assert secret not in output, (secret, output)


@pytest.mark.parametrize(
    "body",
    [
        b"C\r.\r\nD\r\n",  # <CR>.<CR><LF>
        b"C\n.\nD\r\n",  # <LF>.<LF>
        b"C\r\n.\rD\r\n",
        b"C\n.\r\nD\r\n",
    ],
)
def test_no_bare_line_end_reaches_the_downstream(
    env: dict[str, str], sink: tuple[Sink, int], serve: Serve, body: bytes
) -> None:
    customer = cli(env, "mask", TRUST_CUSTOMER, "--conversation", "order-1")
    data = f"From: {CARRIER}\r\nTo: {customer}\r\nSubject: x\r\n\r\n".encode() + body
    assert send(serve.port, CARRIER, [customer], data) == {}
    ((_, _, delivered),) = sink[0].received
    # what the downstream got has only CRLF line ends, and nothing ended it early
    assert delivered.count(b"\r") == delivered.count(b"\r\n") == delivered.count(b"\n")
    assert split_message(delivered).body.startswith(b"C\r\n.")
    assert delivered.endswith(b"\r\nD\r\n")


def test_a_bare_cr_in_a_header_is_refused_over_smtp(
    env: dict[str, str], sink: tuple[Sink, int], serve: Serve
) -> None:
    customer = cli(env, "mask", TRUST_CUSTOMER, "--conversation", "order-1")
    data = f"From: {CARRIER}\r\nTo: {customer}\r\nSubject: x\rBcc: a@b.example\r\n\r\nhi\r\n"
    result = send(serve.port, CARRIER, [customer], data.encode())
    assert next(iter(result.values()))[0] == 554
    assert sink[0].received == []


def test_deep_nesting_is_a_clean_refusal_over_smtp(
    env: dict[str, str], sink: tuple[Sink, int], serve: Serve
) -> None:
    customer = cli(env, "mask", TRUST_CUSTOMER, "--conversation", "order-1")
    # 500 nested comments, folded into lines the SMTP server accepts
    nested = "\r\n ".join(["(" * 100] * 5) + "x" + "\r\n ".join([")" * 100] * 5)
    data = f"From: {CARRIER}\r\nTo: {customer}\r\nCc: {nested} <a@b.example>\r\n\r\nhi\r\n"
    result = send(serve.port, CARRIER, [customer], data.encode())
    code, text = next(iter(result.values()))
    assert code == 554
    assert b"Error" not in text  # no exception name, no traceback text
    assert sink[0].received == []
    assert serve.stop() == 0
    assert "Traceback" not in serve.stderr


def test_wire_lines() -> None:
    assert wire_lines(b"a\r\nb") == b"a\r\nb"
    assert wire_lines(b"plain") == b"plain"
    assert wire_lines(b"\n\r\r\n\n\r") == b"\r\n" * 5


def test_a_delivery_report_comes_home_and_only_a_notice_leaves(
    keyed_env: dict[str, str], sink: tuple[Sink, int], keyed_serve: Serve
) -> None:
    customer = cli(keyed_env, "mask", TRUST_CUSTOMER, "--conversation", "order-1")
    carrier_mail = (
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"
        f"From: Transportadora <{CARRIER}>\r\nTo: {customer}\r\nSubject: Entrega\r\n"
        "Message-ID: <t9@transportadora.example.net>\r\n\r\nAmanha.\r\n"
    ).encode()
    assert send(keyed_serve.port, CARRIER, [customer], carrier_mail) == {}
    ((bounce, _, delivered),) = sink[0].received
    assert bounce.endswith("@" + DOMAIN)
    report = (
        (
            f"From: MAILER-DAEMON@mx.example.com.br\r\nTo: {bounce}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            f"--B\r\nContent-Type: text/plain\r\n\r\n<{TRUST_CUSTOMER}>: unknown user\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.com.br\r\n\r\n"
            f"Final-Recipient: rfc822; {TRUST_CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        ).encode()
        + split_message(delivered).headers
        + b"--B--\r\n"
    )
    assert send(keyed_serve.port, "", [bounce], report) == {}
    assert len(sink[0].received) == 2
    notice_from, notice_to, notice = sink[0].received[1]
    assert (notice_from, notice_to) == ("<>", [CARRIER])  # the sender is told, nobody else
    assert customer.encode() in notice
    assert b"maria.silva" not in notice.lower()
    assert b"example.com.br" not in notice.lower()
    timeline = cli(keyed_env, "timeline", "order-1", "--json")
    assert "delivery-failed" in timeline
    assert keyed_serve.stop() == 0


def _contact_of(delivered: bytes) -> str:
    unfolded = split_message(delivered).headers.replace(b"\r\n ", b" ")
    return next(
        line.split(b"<")[1].split(b">")[0].decode()
        for line in unfolded.split(b"\r\n")
        if line.startswith(b"From:")
    )


def test_serve_mints_contact_aliases_by_the_stored_policy(
    env: dict[str, str], sink: tuple[Sink, int]
) -> None:
    """``ct-alias policy set`` in one process; ``serve`` (only ``--domain``) follows it."""
    trusted = {**env, "CT_ALIAS_AUTHSERV_ID": MTA}
    cli(trusted, "policy", "set", "shop-s", "--mask", "simple")
    server = Serve(trusted, sink[1])
    try:
        for store in ("shop-s", "shop-c"):
            customer = cli(trusted, "mask", CUSTOMER, "--conversation", "o1", "--store", store)
            carrier_mail = (
                f"Authentication-Results: {MTA}; dmarc=pass "
                "header.from=transportadora.example.net\r\n"
                f"From: Transportadora <{CARRIER}>\r\nTo: {customer}\r\nSubject: Entrega\r\n"
                f"Message-ID: <{store}@transportadora.example.net>\r\n\r\nAmanha.\r\n"
            ).encode()
            assert send(server.port, CARRIER, [customer], carrier_mail) == {}
        (_, _, to_simple), (_, _, to_complex) = sink[0].received
        simple, complex_ = _contact_of(to_simple), _contact_of(to_complex)
        # a simple alias keeps the sender's local part and carries a tagged subdomain
        assert simple.startswith("rastreio@transportadora.example.net-")
        assert simple.endswith("." + DOMAIN)
        local, _, domain = complex_.partition("@")
        assert domain == DOMAIN
        assert len(local) == 40
        assert server.stop() == 0
    finally:
        server.kill()
