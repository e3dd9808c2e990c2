"""End to end: an smtplib client -> `ct-alias serve` -> an aiosmtpd sink standing in for the MTA."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from ct_alias.mail import split_message

from .smtp_support import Serve, Sink, cli, free_port, message

KEYS = "server-test-key"
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
