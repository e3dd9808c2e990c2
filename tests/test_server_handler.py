"""RelayHandler and SMTPDeliverer in process: the answers that are hard to provoke over the wire."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from hypothesis import given
from hypothesis import strategies as st

from ct_alias import Tracker
from ct_alias.errors import DeliveryError, InvalidArgument
from ct_alias.relay import Relay
from ct_alias.server import RelayHandler, SMTPDeliverer, _reply_error, _smtp_class

from .smtp_support import Sink, free_port

CUSTOMER = "maria@example.com.br"
SENDER = "rastreio@transportadora.example.net"


class Refusing:
    """A deliverer that takes nothing and says so per recipient (as smtplib's ``refused``)."""

    def __init__(self, code: int, status: str) -> None:
        self.error = DeliveryError(code, "refused", temporary=code < 500, status=status)
        self.calls = 0

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> Mapping[str, DeliveryError]:
        self.calls += 1
        return dict.fromkeys(rcpt_tos, self.error)


def envelope(mail_from: str, rcpt: str, data: bytes) -> Envelope:
    env = Envelope()
    env.mail_from = mail_from
    env.rcpt_tos = [rcpt]
    env.original_content = data
    env.content = data
    return env


def mail(to: str) -> bytes:
    head = f"From: <{SENDER}>\r\nTo: {to}\r\nSubject: x\r\nMessage-ID: <a@b.example>\r\n"
    return (head + "\r\nHi\r\n").encode()


@pytest.fixture
def handler(tracker: Tracker) -> Iterator[RelayHandler]:
    h = RelayHandler(Relay(tracker), Refusing(550, "5.1.1"), handoffs=1)
    yield h
    h.shutdown()


def test_arguments_and_repr(tracker: Tracker, handler: RelayHandler) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgument):
            RelayHandler(Relay(tracker), handler.deliverer, handoffs=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            RelayHandler(Relay(tracker), handler.deliverer, rcpt_workers=bad)  # type: ignore[arg-type]
    assert repr(handler) == f"<RelayHandler {handler.deliverer!r} handoffs=1>"


def test_a_refusal_per_recipient_is_passed_back_and_recorded(
    tracker: Tracker, handler: RelayHandler
) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1").address
    reply = asyncio.run(handler.handle_DATA(None, None, envelope(SENDER, alias, mail(alias))))
    assert reply == "550 5.1.1 downstream server refused the message (550)"
    assert tracker.timeline("o1").messages == ()
    (event,) = [e for e in tracker.timeline("o1").events if e.name == "delivery-failed"]
    assert (event.data["code"], event.data["hard"]) == (550, True)


def test_a_deferral_is_451_with_its_status(tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1").address
    for status, answered in (("4.2.2", "4.2.2"), ("4.0.0", "4.4.1")):
        h = RelayHandler(Relay(tracker), Refusing(452, status))
        try:
            reply = asyncio.run(h.handle_DATA(None, None, envelope(SENDER, alias, mail(alias))))
        finally:
            h.shutdown()
        assert reply.startswith(f"451 {answered} "), reply


class Blocking:
    """A deliverer that takes the message once ``gate`` opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> None:
        self.calls += 1
        assert self.gate.wait(30)


def test_busy_then_stopping(tracker: Tracker) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1").address
    deliverer = Blocking()
    handler = RelayHandler(Relay(tracker), deliverer, handoffs=1)

    async def scenario() -> tuple[str, str]:
        assert handler.refuse_transaction() is None
        first = asyncio.create_task(
            handler.handle_DATA(None, None, envelope(SENDER, alias, mail(alias)))
        )
        await asyncio.sleep(0)  # the first hand-off starts and holds the only slot
        busy = await handler.handle_DATA(None, None, envelope(SENDER, alias, mail(alias)))
        deliverer.gate.set()
        return busy, await first

    try:
        busy, delivered = asyncio.run(scenario())
    finally:
        deliverer.gate.set()
        handler.shutdown()
    assert busy == "451 4.3.2 relay busy, try again later"
    assert delivered == "250 2.0.0 OK: relayed"
    assert deliverer.calls == 1
    assert len(tracker.timeline("o1").messages) == 1
    handler.stop()
    shutting = "421 4.3.2 relay shutting down, try again later"
    data = envelope(SENDER, alias, mail(alias))
    assert asyncio.run(handler.handle_MAIL(None, None, Envelope(), SENDER, [])) == shutting
    assert asyncio.run(handler.handle_RCPT(None, None, Envelope(), alias, [])) == shutting
    assert asyncio.run(handler.handle_DATA(None, None, data)) == shutting
    assert deliverer.calls == 1


def test_an_internal_error_is_temporary(handler: RelayHandler) -> None:
    reply = asyncio.run(handler.handle_exception(RuntimeError("maria@example.com.br")))
    assert reply == "451 4.3.0 internal error, try again later"


def test_reply_errors() -> None:
    error = _reply_error(550, b"5.1.1 <maria@example.com.br>: unknown")
    assert (error.code, error.status, error.temporary) == (550, "5.1.1", False)
    assert "maria" not in str(error)
    assert _reply_error(550, "4.2.0 mismatched class").status == "5.0.0"
    assert _reply_error(421, "no status at all").status == "4.0.0"


@pytest.fixture
def plain_sink() -> Iterator[int]:
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    yield port
    controller.stop()


def test_smtp_deliverer_check_and_smtputf8(plain_sink: int) -> None:
    deliverer = SMTPDeliverer("127.0.0.1", plain_sink, timeout=10)
    assert repr(deliverer) == f"SMTPDeliverer('127.0.0.1', {plain_sink})"
    deliverer.check()
    with pytest.raises(DeliveryError) as info:
        deliverer.deliver("", ["joão@exemplo.com.br"], b"Subject: x\r\n\r\nx\r\n", smtputf8=True)
    assert (info.value.code, info.value.status, info.value.temporary) == (553, "5.6.7", False)
    closed = SMTPDeliverer("127.0.0.1", free_port(), timeout=10)
    with pytest.raises(DeliveryError) as info:
        closed.check()
    assert (info.value.code, info.value.status, info.value.temporary) == (451, "4.4.1", True)
    assert isinstance(info.value.__context__, (ConnectionRefusedError, smtplib.SMTPException))


# -- the addresses of MAIL and RCPT: read as aiosmtpd reads them, for less ------------------

_ADDRESS_PARTS = st.sampled_from(
    ["<", ">", "@", ".", '"', "\\", " ", "\t", "(", ")", "[", "]", ",", ":", ";", "=", "é", "\x00"]
) | st.text(alphabet="abcXYZ09-_+!#$%&'*/?^`{|}~", min_size=1, max_size=8)


def _read(read: Callable[[str], object], arg: str) -> object:
    """What ``read(arg)`` returns, or the type of what it raises (aiosmtpd's own bugs too)."""
    try:
        return read(arg)
    except Exception as exc:
        return type(exc)


@given(st.lists(_ADDRESS_PARTS, max_size=12).map("".join), st.sampled_from([0, 3, 64]))
def test_the_server_reads_an_smtp_address_as_aiosmtpd_does(arg: str, limit: int) -> None:
    server = _smtp_class()(RelayHandler.__new__(RelayHandler))
    server.local_part_limit = limit
    assert _read(server._getaddr, arg) == _read(partial(SMTP._getaddr, server), arg)  # noqa: SLF001


_ATOMS = st.lists(
    st.text(alphabet="abcXYZ09-_+!#$%&'*/=?^`{|}~", min_size=1, max_size=6), min_size=1, max_size=3
)
_TAILS = st.lists(
    st.sampled_from(
        [" ", "\t", "\n", "\x0b", "\xa0", "(", ")", "(c)", "x", "SIZE=1", ">", "<", "é"]
    ),
    max_size=6,
).map("".join)


@given(_ATOMS, _ATOMS, _TAILS, st.sampled_from([0, 3, 64]))
def test_the_server_reads_a_plain_angle_address_as_aiosmtpd_does(
    local: list[str], domain: list[str], tail: str, limit: int
) -> None:
    # the shape its shortcut reads (``<dot-atom@dot-atom>``), with what may follow it
    arg = f"<{'.'.join(local)}@{'.'.join(domain)}>{tail}"
    server = _smtp_class()(RelayHandler.__new__(RelayHandler))
    server.local_part_limit = limit
    assert _read(server._getaddr, arg) == _read(partial(SMTP._getaddr, server), arg)  # noqa: SLF001


@pytest.mark.parametrize(
    "arg",
    [
        "",
        "<>",
        "<maria@example.com.br> (a comment) SIZE=1000",
        "<maria@example.com.br>(a comment)",
        "<maria@example.com.br>\t \tSIZE=1000",
        "<maria@example.com.br>\nSIZE=1000",
        "<Maria.Silva+pedido@Example.COM.br>",
        "<maria..silva@example.com.br>",
        "<.maria@example.com.br>",
        "<maria@example..com.br>",
        "<maria@example.com.br>",
        "<maria@example.com.br> SIZE=1000 BODY=8BITMIME",
        "maria@example.com.br SMTPUTF8",
        ' <"maria silva"@example.com.br>',
        "<@relay.example.org:maria@example.com.br>",
        "<maria@[192.0.2.1]>",
        "<maria(comment)@example.com.br>",
        "<josé@exemplo.com.br>",
        "<maria@example.com.br",
        "<maria@>",
        "maria",
        "<" + "m" * 70 + "@example.com.br>",
    ],
)
def test_the_server_reads_these_smtp_addresses_as_aiosmtpd_does(arg: str) -> None:
    server = _smtp_class()(RelayHandler.__new__(RelayHandler))
    for limit in (0, 64):
        server.local_part_limit = limit
        assert _read(server._getaddr, arg) == _read(partial(SMTP._getaddr, server), arg)  # noqa: SLF001
