"""SMTPDeliverer keeps its downstream connections: reused while they work, never to send twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ct_alias.errors import DeliveryError, InvalidArgument
from ct_alias.server import QUIT_WAIT, SMTPDeliverer

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


class Monotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_by_client(sink: Peers, controller: Controller, peer: Any) -> bool:
    """Whether the connection from ``peer`` was closed (asked on the server's own loop)."""
    answer: list[bool] = []
    done = threading.Event()

    def ask() -> None:
        transport = sink.servers[peer].transport
        answer.append(transport is None or transport.is_closing())
        done.set()

    controller.loop.call_soon_threadsafe(ask)
    assert done.wait(30)
    return answer[0]


def test_a_connection_idle_too_long_is_quit_without_a_next_message(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    clock = Monotonic()
    smtp = deliverer(controller, idle=5.0, monotonic=clock)
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    clock.now += 5.0
    assert smtp.reap() == 0  # not yet more than ``idle``
    assert not closed_by_client(sink, controller, sink.peers[0])
    clock.now += 0.1
    assert smtp.reap() == 1  # QUIT said and answered before reap returns
    assert closed_by_client(sink, controller, sink.peers[0])
    assert smtp.deliver("", ["s@example.org"], DATA, smtputf8=False) == {}
    assert len(set(sink.peers)) == 2


def reapers(controller: Controller) -> list[threading.Thread]:
    """The reaper threads of deliverers to ``controller``."""
    name = f"ct-alias-smtp-reaper 127.0.0.1:{controller.port}"
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_the_reaper_runs_while_connections_are_kept_and_stops_at_close(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    assert reapers(controller) == []  # nothing kept, no thread
    smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    (reaper,) = reapers(controller)
    assert reaper.daemon
    smtp.close()
    assert not reaper.is_alive()
    assert closed_by_client(sink, controller, sink.peers[0])


def test_idle_zero_keeps_no_connection(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller, idle=0)
    for _ in range(2):
        smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
    assert len(set(sink.peers)) == 2
    assert reapers(controller) == []


def test_a_hand_off_finishing_after_close_quits_its_connection(
    peers: tuple[Peers, Controller], deliverer: Callable[..., SMTPDeliverer]
) -> None:
    sink, controller = peers
    smtp = deliverer(controller)
    sink.stall = threading.Event()
    worker = threading.Thread(
        target=smtp.deliver, args=("", ["r@example.org"], DATA), kwargs={"smtputf8": False}
    )
    worker.start()
    with sink.started:
        assert sink.started.wait_for(lambda: sink.data_started == 1, 30)
    smtp.close()  # RelayHandler.shutdown while a hand-off is in flight
    sink.stall.set()
    worker.join(30)
    assert not worker.is_alive()
    assert closed_by_client(sink, controller, sink.peers[0])


def test_a_kept_connection_sends_commands_as_a_new_one_would() -> None:
    # after an SMTPUTF8 transaction smtplib sends UTF-8 commands on that connection: a
    # kept one must refuse a non-ASCII sender without SMTPUTF8 as a new connection does
    sink = Peers()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=True)
    controller.start()
    try:
        outcomes = []
        for keep in (0, 8):
            smtp = SMTPDeliverer("127.0.0.1", controller.port, timeout=10, keep=keep)
            try:
                smtp.deliver("b@example.org", ["jos\u00e9@example.org"], DATA, smtputf8=True)
                try:
                    smtp.deliver("b@ex\u00e4mple.org", ["r@example.org"], DATA, smtputf8=False)
                    outcomes.append("sent as UTF-8 without SMTPUTF8")
                except (UnicodeEncodeError, DeliveryError) as exc:
                    outcomes.append(f"refused: {type(exc).__name__}")
            finally:
                smtp.close()
        assert outcomes[0] == outcomes[1]
        assert outcomes[0].startswith("refused")
    finally:
        controller.stop()


class SilentAtQuit(Peers):
    """A downstream that stops answering once asked to ``QUIT``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def handle_QUIT(self, server, session, envelope):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.release.wait, 120)
        return "221 Bye"


def test_close_does_not_wait_long_for_a_downstream_that_stopped_answering() -> None:
    sink = SilentAtQuit()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        # the connection's own timeout is a minute: close() waits QUIT_WAIT for the reply
        smtp = SMTPDeliverer("127.0.0.1", controller.port, timeout=60)
        smtp.deliver("", ["r@example.org"], DATA, smtputf8=False)
        closing = threading.Thread(target=smtp.close)
        closing.start()
        closing.join(30)  # a bound for a hang, well under the minute
        assert not closing.is_alive()
        assert QUIT_WAIT < 30
    finally:
        sink.release.set()
        controller.stop()
