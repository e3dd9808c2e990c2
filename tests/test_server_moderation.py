"""`ct-alias serve --moderate`: the shipped moderators on the wire (flag delivers, refuse: 550)."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from .smtp_support import Serve, Sink, cli, free_port, serve_command
from .test_server import CARRIER, CUSTOMER, DOMAIN, KEYS, MTA


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
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
        "CT_ALIAS_INDEX_KEY": "server-moderation-index",
    }
    cli(environment, "db", "upgrade")
    return environment


def carrier_mail(alias: str, body: str, *extra: str, ident: str = "m1") -> bytes:
    head = [
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net",
        f"From: Transportadora <{CARRIER}>",
        f"To: {alias}",
        "Subject: Entrega",
        f"Message-ID: <{ident}@transportadora.example.net>",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


def test_serve_flags_and_refuses_by_the_moderators_it_was_given(
    env: dict[str, str], sink: tuple[Sink, int]
) -> None:
    trusted = {**env, "CT_ALIAS_AUTHSERV_ID": MTA}
    alias = cli(trusted, "mask", CUSTOMER, "--conversation", "order-1")
    server = Serve(
        trusted,
        sink[1],
        "--moderate",
        "contact-details",
        "--moderate",
        "attachment-types=image/*",
    )
    try:
        flagged = carrier_mail(alias, "Duvidas? wa.me/5511987654321")
        zipped = carrier_mail(
            alias,
            "--b\r\nContent-Type: application/zip; name=x.zip\r\n"
            "Content-Disposition: attachment; filename=x.zip\r\n\r\nPK\r\n--b--",
            'Content-Type: multipart/mixed; boundary="b"',
            ident="m2",
        )
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            assert client.sendmail(CARRIER, [alias], flagged) == {}
            try:
                client.sendmail(CARRIER, [alias], zipped)
            except smtplib.SMTPDataError as refused:
                code, text = refused.smtp_code, refused.smtp_error
            else:
                raise AssertionError("the zip was delivered")
        assert code == 550
        assert text == (
            b"5.7.1 message refused: attachment type not allowed: application/zip (x.zip)"
        )
        assert len(sink[0].received) == 1
        timeline = json.loads(cli(trusted, "timeline", "order-1", "--json"))
        (message,) = timeline["messages"]
        assert message["moderation"] == [
            {
                "moderator": "contact-details",
                "action": "flag",
                "reason": "contact details in the message: a messaging app link",
            }
        ]
        (refusal,) = [e for e in timeline["events"] if e["event"] == "message-refused"]
        assert refusal["data"]["moderator"] == "attachment-types"
        assert server.stop() == 0
    finally:
        server.kill()
    assert "moderator 'attachment-types' refused a message" in server.stderr
    assert CARRIER not in server.stderr
    assert CUSTOMER not in server.stderr


def test_serve_takes_moderators_from_the_environment(
    env: dict[str, str], sink: tuple[Sink, int]
) -> None:
    moderated = {**env, "CT_ALIAS_MODERATE": "contact-details=refuse"}
    alias = cli(moderated, "mask", CUSTOMER, "--conversation", "order-2")
    server = Serve(moderated, sink[1])
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.ehlo("mta.test")
            client.mail(CARRIER)
            assert client.rcpt(alias)[0] == 250
            code, text = client.data(carrier_mail(alias, "liga (11) 98765-4321"))
        assert (code, text) == (
            550,
            b"5.7.1 message refused: contact details in the message: a phone number",
        )
        assert sink[0].received == []
        assert server.stop() == 0
    finally:
        server.kill()


def test_serve_refuses_an_unknown_rule(env: dict[str, str], sink: tuple[Sink, int]) -> None:
    for bad in ("spam-filter", "attachment-size=big", "contact-details=drop"):
        done = subprocess.run(
            serve_command(sink[1], "--moderate", bad),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "--moderate" in done.stderr
