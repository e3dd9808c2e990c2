"""Two `ct-alias serve` processes on one PostgreSQL, as when the relay outgrows one machine.

An authenticated carrier's message to a customer's alias is sent through both
servers at the same moment, for many orders: each server masks the carrier's
address as the order's contact while the other does the same. Every order
must end up with one contact alias, used by both copies, and every message
must be accepted and delivered once.
"""

from __future__ import annotations

import os
import smtplib
import threading
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from ct_alias import Role
from ct_alias.clock import SystemClock
from ct_alias.storage.sql import SQLStorage
from ct_alias.testing import make_tracker

from .smtp_support import Serve, Sink, free_port
from .sql_servers import Target, clear

# generated with secrets.token_urlsafe(32) for these tests
KEY = "FJm3pOGh3og-TYGs1fP3upZoc9-407sgja9MqELA5OM"
INDEX_KEY = "24PEikylfrfroOi4ApCkpm62VzjPqSdql02AKGCBmuY"
DOMAIN = "ct.example.com"
MTA = "mx.ct.example.com"
CARRIER = "rastreio@transportadora.example.net"
ORDERS = 12


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    controller.stop()


def carrier_mail(alias: str, n: int, copy: int) -> bytes:
    return (
        f"Authentication-Results: {MTA}; dmarc=pass header.from=transportadora.example.net\r\n"
        f"From: Transportadora <{CARRIER}>\r\nTo: {alias}\r\nSubject: Entrega {n}\r\n"
        f"Message-ID: <t{n}.{copy}@transportadora.example.net>\r\n\r\nAmanha.\r\n"
    ).encode()


def test_two_serve_processes_mask_each_carrier_once_per_order(
    postgresql: Target, postgresql_store: SQLStorage, sink: tuple[Sink, int]
) -> None:
    downstream, port = sink
    clear(postgresql_store)
    schema = postgresql.options["schema"]
    url = make_url(postgresql.url).update_query_dict({"options": f"-csearch_path={schema}"})
    env = {
        **os.environ,
        "CT_ALIAS_DB": url.render_as_string(hide_password=False),
        "CT_ALIAS_KEYS": KEY,
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_INDEX_KEY": INDEX_KEY,
        "CT_ALIAS_AUTHSERV_ID": MTA,
    }
    tracker = make_tracker(
        postgresql_store, keys=[KEY], domain=DOMAIN, index_key=INDEX_KEY, clock=SystemClock()
    )
    customers = [
        tracker.mask(f"cliente.{n}@example.com.br", conversation=f"order-{n}").address
        for n in range(ORDERS)
    ]
    servers = [Serve(env, port, "--handoffs", str(ORDERS)) for _ in range(2)]
    failures: list[object] = []
    barrier = threading.Barrier(2 * ORDERS)

    def send(server: Serve, n: int, copy: int) -> None:
        barrier.wait()
        try:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
                data = carrier_mail(customers[n], n, copy)
                refused = client.sendmail(CARRIER, [customers[n]], data)
            if refused:
                failures.append(refused)
        except smtplib.SMTPException as exc:
            failures.append(exc)

    try:
        threads = [
            threading.Thread(target=send, args=(server, n, copy))
            for n in range(ORDERS)
            for copy, server in enumerate(servers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        codes = [server.stop() for server in servers]
    assert failures == []
    assert codes == [0, 0], [server.stderr for server in servers]
    assert len(downstream.received) == 2 * ORDERS
    for n in range(ORDERS):
        contacts = [a for a in tracker.aliases(f"order-{n}") if a.role is Role.CONTACT]
        assert len(contacts) == 1, contacts
        senders = {
            delivered.split(b"\r\nFrom: ", 1)[1].split(b"\r\n", 1)[0]
            for _, rcpts, delivered in downstream.received
            if rcpts == [f"cliente.{n}@example.com.br"]
        }
        assert len(senders) == 1
        assert contacts[0].address.encode() in senders.pop()
