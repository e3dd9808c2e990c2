"""SMTPDeliverer keeps its downstream connections: reused while they work, never to send twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ct_alias.errors import DeliveryError, InvalidArgument
from ct_alias.server import SMTPDeliverer

from .smtp_support import Sink, free_port

DATA = b"From: <a@example.org>\r\nTo: <b@example.org>\r\nSubject: x\r\n\r\nHi\r\n"


class Peers(Sink):
    """A sink that knows its connections, and can close them or refuse on them."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Any] = []  # the client's address per message taken
        self.closing: set[Any] = set()  # connections answered 421 at MAIL
        self.drop_in_data = False  # take the message, then hang up without a reply
        self.servers: dict[Any, Any] = {}  # client address -> aiosmtpd protocol
        self.mail_options: list[list[str]] = []  # the MAIL parameters of each transaction

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        self.servers[session.peer] = server
        self.mail_options.append(list(mail_options))
        if session.peer in self.closing:
            return "421 4.4.2 idle too long, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.peers.append(session.peer)
        if self.drop_in_data:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), b""))
            server.transport.close()
            return "250 OK"  # never reaches the client
        return await super().handle_DATA(server, session, envelope)  # type: ignore[no-untyped-call]

    def hang_up(self, controller: Controller, peer: Any) -> None:
        """Close the connection from ``peer`` on the server's side, and wait until it is closed."""
        done = threading.Event()

        def close() -> None:
            self.servers[peer].transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close)
        assert done.wait(30)


@pytest.fixture
def peers() -> Iterator[tuple[Peers, Controller]]:
    handler = Peers()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    controller.stop()


@pytest.fixture
def deliverer() -> Iterator[Callable[..., SMTPDeliverer]]:
    made: list[SMTPDeliverer] = []

    def make(controller: Controller, **options: Any) -> SMTPDeliverer:
        made.append(SMTPDeliverer("127.0.0.1", controller.port, timeout=10, **options))
        return made[-1]

    yield make
    for smtp in made:
        smtp.close()


def test_one_connection_carries_message_after_message(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    for n in range(3):
        assert smtp.deliver("", [f"r{n}@example.org"], DATA, smtputf8=False) == {}
    assert len(set(sink.peers)) == 1
    assert [rcpts for _, rcpts, _ in sink.received] == [[f"r{n}@example.org"] for n in range(3)]
    smtp.close()
    smtp.close()  # nothing left to quit


def test_keep_zero_connects_per_message(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller, keep=0)
    for _ in range(2):
        smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    assert len(set(sink.peers)) == 2


def test_a_connection_closed_while_idle_is_replaced(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    sink.hang_up(controller, sink.peers[0])
    assert smtp.deliver("", ["s@example.org"], DATA, smtputf8=False) == {}
    assert sink.copies("s@example.org") == 1
    assert len(set(sink.peers)) == 2


def test_a_421_at_mail_on_a_kept_connection_is_sent_again_on_a_new_one(
    peers: tuple[Peers, Controller],
    deliverer: Callable[..., SMTPDeliverer],
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    sink.closing.add(sink.peers[0])
    assert smtp.deliver("", ["s@example.org"], DATA, smtputf8=False) == {}
    assert sink.copies("s@example.org") == 1
    assert len(set(sink.peers)) == 2


def test_a_421_at_mail_on_a_new_connection_is_a_temporary_failure(
    peers: tuple[Peers, Controller],
    deliverer: Callable[..., SMTPDeliverer],
) -> None:
    sink, controller = peers

    async def always_closing(server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        return "421 4.3.2 shutting down"

    sink.handle_MAIL = always_closing  # type: ignore[method-assign]
    with pytest.raises(DeliveryError) as info:
        deliverer(controller).deliver("", ["r@example.org"], DATA, smtputf8=False)
    assert (info.value.code, info.value.status, info.value.temporary) == (421, "4.3.2", True)
    assert sink.received == []


def test_a_connection_lost_after_the_content_went_is_never_sent_again(
    peers: tuple[Peers, Controller],
    deliverer: Callable[..., SMTPDeliverer],
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    sink.drop_in_data = True
    with pytest.raises(DeliveryError) as info:
        smtp.deliver("", ["s@example.org"], DATA, smtputf8=False)
    assert info.value.temporary
    assert sink.copies("s@example.org") == 1  # taken once, and not sent a second time
    sink.drop_in_data = False
    assert smtp.deliver("", ["t@example.org"], DATA, smtputf8=False) == {}
    assert len(set(sink.peers)) == 2  # the broken connection was not kept


def test_a_refused_transaction_closes_its_connection(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    sink.refuse.add("gone@example.org")
    smtp = deliverer(controller)
    with pytest.raises(DeliveryError):
        smtp.deliver("", ["gone@example.org"], DATA, smtputf8=False)
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    smtp.deliver("", ["s@example.org"], DATA, smtputf8=False)
    assert sink.copies("gone@example.org") == 0
    assert len(set(sink.peers)) == 1  # the refused one never reached DATA; these two share one


def test_arguments() -> None:
    for keep in (-1, True, 1.5):
        with pytest.raises(InvalidArgument):
            SMTPDeliverer("127.0.0.1", 25, keep=keep)  # type: ignore[arg-type]
    for idle in (-1.0, True, "5"):
        with pytest.raises(InvalidArgument):
            SMTPDeliverer("127.0.0.1", 25, idle=idle)  # type: ignore[arg-type]


def test_size_is_declared_once(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    deliverer(controller).deliver("", ["r@example.org"], DATA, smtputf8=False)
    (options,) = sink.mail_options
    assert [o.upper() for o in options] == [f"SIZE={len(DATA)}"]
