r"""The SMTP server: an aiosmtpd shell around the sans-IO :class:`~ct_alias.relay.Relay`.

Needs the ``smtp`` extra (aiosmtpd). ``ct-alias serve`` runs it::

    ct-alias serve --listen 127.0.0.1:2525 --deliver smtp://127.0.0.1:25 \\
        --domain ct.example.com --db sqlite:///ct_alias.db

* Each ``RCPT TO`` is answered with the relay's decision, so refused mail is
  refused by the sender's own server (no backscatter).
* **One alias per transaction.** Different aliases need different rewrites,
  hence different downstream transactions whose results may differ; SMTP has
  one reply per message. So the first acceptable alias of a transaction is
  taken and every other one is answered ``452 4.5.3`` at ``RCPT``: the client
  sends it in a new transaction (RFC 5321 4.5.3.1.10). The same alias named
  twice is accepted once and delivered once.
* **Exactly once, no queue.** The message is answered ``250`` only after the
  downstream server took it; a downstream refusal is passed back (``4xx`` or
  ``5xx``), so the client keeps the message or bounces it. Nothing is answered
  ``5xx`` that was delivered, nor ``250`` that was not.
* **Recorded after delivery.** The message goes on the timeline when the
  downstream took it (:meth:`~ct_alias.relay.Relay.delivered`); a refusal is
  a ``delivery-failed`` event (:meth:`~ct_alias.relay.Relay.delivery_failed`).
* **Isolation.** ``RCPT`` decisions run in their own threads, never behind
  hand-offs; hand-offs run in a bounded pool, and when it is full ``DATA`` is
  answered ``451 4.3.2`` (try again later) before the content is sent. ``RCPT``
  is still answered, so recipient-verification probes keep working.
* ``SIZE`` is advertised and enforced; ``SMTPUTF8`` is accepted and used
  downstream when the downstream server supports it.
* SIGTERM (or SIGINT) stops accepting connections at once, closes idle
  client connections, lets hand-offs in flight finish (up to ``grace``
  seconds), then closes the rest and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import select
import signal
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, Final, Protocol

from .errors import DeliveryError, InvalidArgument, MissingExtra, StorageError
from .relay import Outcome, Relay

__all__ = ["Deliverer", "RelayHandler", "SMTPDeliverer", "run_server", "start_server"]

logger = logging.getLogger(__name__)

#: Hand-offs (downstream deliveries) that may run at once, by default.
DEFAULT_HANDOFFS: Final = 8
#: Threads answering ``RCPT`` (each a storage lookup), by default.
DEFAULT_RCPT_WORKERS: Final = 4
#: Seconds the reply to ``QUIT`` is waited for, when a connection is closed.
QUIT_WAIT: Final = 1.0
#: Seconds a downstream connection is kept for the next message, by default (below the
#: idle timeouts MTAs use: Postfix's smtpd waits 300 s, its own client caches for 2 s).
DEFAULT_IDLE_SECONDS: Final = 5.0

_STATUS = re.compile(rb"\s*([245]\.\d{1,3}\.\d{1,3})\b")
_SHUTTING_DOWN: Final = "421 4.3.2 relay shutting down, try again later"
_BUSY: Final = "451 4.3.2 relay busy, try again later"
_ONE_ALIAS: Final = "452 4.5.3 one alias per message: send this one in a new transaction"


class Deliverer(Protocol):
    """Where accepted mail goes: one method, easy to replace."""

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> Mapping[str, DeliveryError] | None:
        """Hand one message to the next hop.

        The server passes one recipient per call. A deliverer given several
        reports the ones refused while others were taken.

        Returns:
            The recipients that were refused while others were taken, each
            with its error; ``None`` or empty when every recipient was taken.

        Raises:
            DeliveryError: no recipient was taken (``temporary`` says whether
                to retry).
        """
        ...


_LINE_END: Final = re.compile(rb"\r\n|\r|\n")


def wire_lines(message: bytes) -> bytes:
    r"""``message`` with every line ending CRLF: no bare CR or bare LF goes on the wire.

    A bare CR or LF means different things to different mail systems (the
    ``<CR>.<CR><LF>`` and ``<LF>.<LF>`` SMTP smuggling forms end a message
    early for some of them), so the hand-off normalises them rather than
    pass them on. smtplib then dot-stuffs every line that starts with ``.``.

    >>> wire_lines(b"a\rb\nc\r\n.\r")
    b'a\r\nb\r\nc\r\n.\r\n'
    """
    if b"\r" not in message and b"\n" not in message:
        return message
    return _LINE_END.sub(b"\r\n", message)


class SMTPDeliverer:
    """Delivers to a downstream SMTP server (an MTA such as Postfix) with smtplib.

    Connections are kept for the next message, as an MTA's own SMTP client
    caches them: after a message was taken, its connection waits (up to
    ``keep`` of them, each at most ``idle`` seconds) instead of being closed,
    so the next message skips the connection, the greeting and ``EHLO``. A
    connection the downstream closed or spoke on while idle is never reused;
    one found closed when the next message is sent, before the content went
    out (so nothing can have been taken), is replaced by a new one and the
    message is sent on that. A connection on which anything failed is closed.
    A thread quits the connections left idle for ``idle`` seconds (within
    half as long again), so a quiet relay holds none of the downstream's
    processes; :meth:`close` quits the rest, and after it no connection is
    kept.

    Args:
        host: the downstream server.
        port: its port.
        timeout: seconds to wait for it (each read and write).
        local_hostname: the name to greet it with (default: this host's FQDN).
        keep: idle connections kept for the next messages (0: a new
            connection per message).
        idle: seconds an idle connection is kept (0: none is kept).
        monotonic: the clock idle times are measured by (seconds; default
            :func:`time.monotonic`).
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        keep: int = DEFAULT_HANDOFFS,
        idle: float = DEFAULT_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
            raise InvalidArgument("keep", "must be an int >= 0")
        if not isinstance(idle, int | float) or isinstance(idle, bool) or idle < 0:
            raise InvalidArgument("idle", "must be a number of seconds >= 0")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.keep = keep
        self.idle = float(idle)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._idle: list[tuple[float, _Client]] = []  # (since when, connection), oldest first
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SMTPDeliverer({self.host!r}, {self.port})"

    def check(self) -> None:
        """Connect, greet and quit: is the downstream server there and willing?

        Raises:
            DeliveryError: it could not be reached or refused the greeting.
        """
        with self._failures(), self._connect() as client:
            client.ehlo_or_helo_if_needed()
            code, text = client.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> dict[str, DeliveryError]:
        """Send ``message`` in one SMTP transaction; see :meth:`Deliverer.deliver`."""
        message = wire_lines(message)
        recipients = list(rcpt_tos)
        with self._failures():
            client = self._kept()
            if client is not None:
                try:
                    return self._send(client, mail_from, recipients, message, utf8=smtputf8)
                except (smtplib.SMTPServerDisconnected, ConnectionError, _Stale):
                    if client.data_begun:
                        raise  # the content may have been taken: never send it twice
                    # closed while idle, before anything of this message was taken
            client = self._connect()
            return self._send(client, mail_from, recipients, message, utf8=smtputf8)

    def close(self) -> None:
        """Quit the connections kept for the next messages; from now on none is kept.

        A hand-off still running when it is called quits its connection when
        it is done, instead of keeping it.
        """
        with self._lock:
            self._closed.set()
            kept, self._idle = self._idle, []
            reaper = self._reaper
        for _, client in kept:
            _quit(client)
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join()

    def reap(self) -> int:
        """Quit the connections idle for more than ``idle`` seconds; how many were quit.

        The deliverer's own thread calls it while connections are kept.
        """
        now = self._monotonic()
        with self._lock:
            expired = [client for since, client in self._idle if now - since > self.idle]
            self._idle = [(since, c) for since, c in self._idle if now - since <= self.idle]
        for client in expired:
            _quit(client)
        return len(expired)

    def _reap_while_open(self) -> None:
        """The reaper thread: quit expired connections until :meth:`close`."""
        while not self._closed.wait(self.idle / 2):
            self.reap()

    def _send(
        self, client: _Client, mail_from: str, rcpt_tos: list[str], message: bytes, *, utf8: bool
    ) -> dict[str, DeliveryError]:
        """One transaction on ``client``, kept for the next one if it went through, else quit."""
        client.data_begun = False
        # smtplib switches a connection to UTF-8 commands for an SMTPUTF8 transaction and
        # only RSET or a new connection switch it back: a kept one starts as a new one would
        client.command_encoding = "ascii"
        try:
            refused = _transaction(client, mail_from, rcpt_tos, message, smtputf8=utf8)
        except BaseException:
            _quit(client)
            raise
        self._keep(client)
        return {rcpt: _reply_error(code, text) for rcpt, (code, text) in refused.items()}

    def _kept(self) -> _Client | None:
        """A kept connection still open and silent, or ``None``; expired ones are quit."""
        now = self._monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                since, client = self._idle.pop()  # the most recently used
            if now - since <= self.idle and _silent(client):
                return client
            _quit(client)

    def _keep(self, client: _Client) -> None:
        """Keep ``client`` for the next message, or quit it when enough are kept or closed."""
        with self._lock:
            if len(self._idle) < self.keep and self.idle > 0 and not self._closed.is_set():
                self._idle.append((self._monotonic(), client))
                if self._reaper is None:
                    self._reaper = threading.Thread(
                        target=self._reap_while_open,
                        name=f"ct-alias-smtp-reaper {self.host}:{self.port}",
                        daemon=True,
                    )
                    self._reaper.start()
                return
        _quit(client)

    def _connect(self) -> _Client:
        return _Client(
            self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
        )

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn smtplib's and the socket's failures into :class:`DeliveryError`."""
        try:
            yield
        except DeliveryError:
            raise
        except _Stale as exc:
            raise _reply_error(exc.code, exc.text) from None
        except smtplib.SMTPRecipientsRefused as exc:
            # every recipient refused: the most hopeful reply decides
            code, text = min(exc.recipients.values())
            raise _reply_error(code, text) from None
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            # the exception text names host and port at most, never a recipient
            raise DeliveryError(
                451, f"{type(exc).__name__}: {exc}", temporary=True, status="4.4.1"
            ) from None


def _transaction(
    client: _Client, mail_from: str, rcpt_tos: list[str], message: bytes, *, smtputf8: bool
) -> dict[str, tuple[int, bytes]]:
    """``MAIL``, ``RCPT`` and ``DATA`` on ``client``; the recipients refused while others were not.

    Raises:
        _Stale: the downstream answered ``MAIL`` with ``421`` (it is closing the connection).
    """
    client.ehlo_or_helo_if_needed()
    options: list[str] = []
    if smtputf8:
        if not client.has_extn("smtputf8"):
            raise DeliveryError(
                553,
                "the downstream server does not support SMTPUTF8",
                temporary=False,
                status="5.6.7",
            )
        options.append("SMTPUTF8")
    # smtplib adds SIZE= itself when the downstream advertises SIZE: once, not twice
    try:
        return client.sendmail(mail_from, rcpt_tos, message, mail_options=options)
    except smtplib.SMTPSenderRefused as exc:
        if exc.smtp_code == 421 and not client.data_begun:
            raise _Stale(exc.smtp_code, exc.smtp_error) from None
        raise


class _Stale(Exception):
    """The downstream is closing the connection (``421`` before the content was sent)."""

    def __init__(self, code: int, text: bytes) -> None:
        super().__init__(code)
        self.code = code
        self.text = text


class _Client(smtplib.SMTP):
    """smtplib's client, telling whether a transaction got as far as ``DATA``."""

    data_begun = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        """Send ``DATA`` and the content (see :meth:`smtplib.SMTP.data`); remember it began."""
        self.data_begun = True
        return super().data(msg)


def _silent(client: _Client) -> bool:
    """Whether an idle connection is open with nothing to read (a ``421``, or its end, would be)."""
    sock = client.sock
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _quit(client: smtplib.SMTP) -> None:
    """Say ``QUIT`` if the connection still works, and close it.

    The reply is waited for :data:`QUIT_WAIT` seconds at most, not the
    connection's whole timeout: a downstream that has stopped answering must
    not hold up a shutdown (which quits every kept connection) or the reaper.
    """
    try:
        if client.sock is not None:
            client.sock.settimeout(min(QUIT_WAIT, client.timeout))
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def _reply_error(code: int, text: bytes | str) -> DeliveryError:
    """A downstream reply as an error; its text is not kept (it may quote the real address)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    found = _STATUS.match(raw)
    temporary = code < 500
    status = found.group(1).decode() if found else None
    if status is not None and status[0] != ("4" if temporary else "5"):
        status = None
    return DeliveryError(code, "refused", temporary=temporary, status=status)


class RelayHandler:
    """The aiosmtpd handler: RCPT and DATA answered by the relay, delivery by a deliverer.

    The relay and the deliverer are synchronous (they wait on a database or a
    socket), so they run in threads, never on the event loop: ``RCPT``
    decisions in a pool of their own, hand-offs in another that holds at most
    ``handoffs`` of them; when it is full, ``DATA`` is answered ``451 4.3.2``.

    Args:
        relay: the relay that decides.
        deliverer: where accepted mail goes.
        handoffs: hand-offs that may run at once (each holds about four
            copies of one message: received, rewritten, and smtplib's).
        rcpt_workers: threads answering ``RCPT``.
    """

    def __init__(
        self,
        relay: Relay,
        deliverer: Deliverer,
        *,
        handoffs: int = DEFAULT_HANDOFFS,
        rcpt_workers: int = DEFAULT_RCPT_WORKERS,
    ) -> None:
        for name, value in (("handoffs", handoffs), ("rcpt_workers", rcpt_workers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidArgument(name, "must be a positive int")
        self.relay = relay
        self.deliverer = deliverer
        self.handoffs = handoffs
        self._rcpt_pool = ThreadPoolExecutor(rcpt_workers, thread_name_prefix="ct-alias-rcpt")
        self._handoff_pool = ThreadPoolExecutor(handoffs, thread_name_prefix="ct-alias-handoff")
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._connections: set[Any] = set()
        self._busy: set[Any] = set()

    def __repr__(self) -> str:
        return f"<RelayHandler {self.deliverer!r} handoffs={self.handoffs}>"

    # -- SMTP hooks ------------------------------------------------------------

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        """Start a transaction, unless the relay is stopping."""
        del server, session
        if self._stopping:
            return _SHUTTING_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept or refuse one recipient: the relay's decision, one alias per transaction."""
        del server, session, rcpt_options
        if self._stopping:
            return _SHUTTING_DOWN
        key = _recipient_key(address)
        if any(_recipient_key(taken) == key for taken in envelope.rcpt_tos):
            return "250 2.1.5 OK (the same alias again: delivered once)"
        loop = asyncio.get_running_loop()
        refusal: Outcome | None = await loop.run_in_executor(
            self._rcpt_pool, self.relay.check_recipient, address
        )
        if refusal is not None:
            return refusal.reply
        if envelope.rcpt_tos:
            return _ONE_ALIAS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        """Relay the message: ``250`` only once the downstream server took it."""
        del session
        refusal = self.refuse_transaction()
        if refusal is not None:
            return refusal
        self._in_flight += 1
        self._idle.clear()
        self._busy.add(server)
        try:
            loop = asyncio.get_running_loop()
            hand_off = functools.partial(
                self._hand_off,
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                envelope.original_content,
                utf8=bool(getattr(envelope, "smtp_utf8", False)),
            )
            return await loop.run_in_executor(self._handoff_pool, hand_off)
        finally:
            self._busy.discard(server)
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    def refuse_transaction(self) -> str | None:
        """The reply to a ``DATA`` that cannot be handed off now, or ``None``.

        It cannot while the relay is stopping or while every hand-off is busy.
        The server asks before the client sends the content.
        """
        if self._stopping:
            return _SHUTTING_DOWN
        if self._in_flight >= self.handoffs:
            return _BUSY
        return None

    async def handle_exception(self, error: Exception) -> str:
        """A bug must not become a permanent refusal: log it, and let the client retry."""
        logger.error("internal error while serving a client: %s", type(error).__name__)
        return "451 4.3.0 internal error, try again later"

    # -- the hand-off (in a thread) -------------------------------------------

    def _hand_off(self, mail_from: str, rcpt_tos: list[str], data: bytes, *, utf8: bool) -> str:
        result = self.relay.handle(mail_from, rcpt_tos, data)
        if len(result.outcomes) != 1:  # pragma: no cover - handle_RCPT takes one alias
            raise AssertionError("a transaction carries exactly one alias")
        (outcome,) = result.outcomes
        if not outcome.accepted:
            return outcome.reply
        if outcome.deliver_to is None or outcome.message is None:
            return outcome.reply  # a delivery report, consumed: nothing to hand off
        smtputf8 = utf8 or not outcome.deliver_to.isascii()
        try:
            refused = self.deliverer.deliver(
                outcome.mail_from or "", [outcome.deliver_to], outcome.message, smtputf8=smtputf8
            )
        except DeliveryError as exc:
            return self._failed(outcome, exc)
        if refused:
            return self._failed(outcome, next(iter(refused.values())))
        try:
            self.relay.delivered(outcome)
        except StorageError as exc:
            # delivered: the client must not send it again, whatever the timeline says
            logger.error(  # noqa: TRY400 - one line per failure, no traceback
                "relayed a message in conversation %r but could not record it: %s",
                outcome.conversation,
                exc,
            )
        return "250 2.0.0 OK: relayed"

    def _failed(self, outcome: Outcome, exc: DeliveryError) -> str:
        kind = "temporary" if exc.temporary else "permanent"
        logger.warning(
            "downstream did not take a message for conversation %r: %s %s (%s)",
            outcome.conversation,
            exc.code,
            exc.status,
            kind,
        )
        try:
            self.relay.delivery_failed(outcome, exc.code, exc.status, permanent=not exc.temporary)
        except StorageError as storage:
            logger.error(  # noqa: TRY400 - one line per failure, no traceback
                "could not record a failed delivery for conversation %r: %s",
                outcome.conversation,
                storage,
            )
        if exc.temporary:
            status = exc.status if exc.status != "4.0.0" else "4.4.1"
            return f"451 {status} downstream server did not take the message, please try again"
        code = exc.code if 550 <= exc.code <= 559 else 554
        return f"{code} {exc.status} downstream server refused the message ({exc.code})"

    # -- connections and shutdown ---------------------------------------------

    def connection_opened(self, protocol: Any) -> None:
        """Called by the server when a client connects."""
        self._connections.add(protocol)

    def connection_closed(self, protocol: Any) -> None:
        """Called by the server when a client connection ends."""
        self._connections.discard(protocol)
        self._busy.discard(protocol)

    def stop(self) -> None:
        """Refuse new transactions and close every client connection not in a hand-off."""
        self._stopping = True
        for protocol in list(self._connections):
            if protocol not in self._busy:
                _close(protocol)

    def close_connections(self) -> None:
        """Close every client connection (after :meth:`stop` and :meth:`wait_idle`)."""
        for protocol in list(self._connections):
            _close(protocol)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no message is being handed off; ``False`` if ``timeout`` ran out."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        """Release the threads (hand-offs still running finish on their own timeout).

        The downstream connections kept for the next messages are quit.
        """
        self._rcpt_pool.shutdown(wait=False, cancel_futures=True)
        self._handoff_pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.deliverer, "close", None)
        if callable(close):
            close()


def _recipient_key(address: str) -> str:
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    return address.lower()


def _close(protocol: Any) -> None:
    transport = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.write(f"{_SHUTTING_DOWN}\r\n".encode())
        transport.close()


_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#: ``<local@domain>``, both dot-atoms of ASCII atext, then anything: the address and the tail.
_PLAIN_ANGLE_ADDR: Final = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>(.*)\Z", re.DOTALL
)
#: What starts folding white space for :mod:`email`'s parser (``CFWS_LEADER`` less ``(``).
_WSP: Final = frozenset(" \t")


def _smtp_address(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None]:
    """The address of a ``MAIL FROM:`` or ``RCPT TO:`` argument, and what follows it.

    As aiosmtpd's server reads it (``SMTP._getaddr``): ``<address>`` or a bare
    address, parsed by :mod:`email`'s RFC 5322 parser; ``('', '')`` for an
    empty argument; ``(None, None)`` when it does not parse, or when
    ``local_part_limit`` (0: none) is exceeded.

    >>> _smtp_address("<maria@example.com> SIZE=100")
    ('maria@example.com', 'SIZE=100')
    """
    if not arg:
        return "", ""
    found = _plain_address(arg)
    if found is None:
        address: Any
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        found = (address.addr_spec, rest)
    addr, rest = found
    local, _, _ = addr.rpartition("@")
    if local_part_limit and len(local) > local_part_limit:
        return None, None
    return addr, rest


def _plain_address(arg: str) -> tuple[str, str] | None:
    """``_smtp_address`` of ``<dot-atom@dot-atom>`` in ASCII, what nearly every client sends.

    :mod:`email`'s parser gives such an address back unchanged, and what
    follows it with its leading white space removed; ``None`` for any other
    argument, and when a comment follows the address (the parser reads it).
    """
    plain = _PLAIN_ANGLE_ADDR.match(arg)
    if plain is None:
        return None
    addr, tail = plain.group(1, 2)
    rest = tail.lstrip() if tail[:1] in _WSP else tail
    return None if rest.startswith("(") else (addr, rest)


def _smtp_class() -> Any:
    try:
        from aiosmtpd.smtp import SMTP  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise MissingExtra("smtp", "aiosmtpd", "The SMTP server") from None

    class TrackedSMTP(SMTP):
        """aiosmtpd's SMTP protocol, telling the handler about its connections."""

        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            # aiosmtpd's parse of a MAIL or RCPT address, the same checks and results,
            # without the typing class it defines at every call (most of its cost)
            return _smtp_address(arg, self.local_part_limit)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.event_handler.connection_opened(self)

        def connection_lost(self, error: Exception | None) -> None:
            self.event_handler.connection_closed(self)
            super().connection_lost(error)

        async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's name
            # refused before the client sends the content, not after
            busy = self.envelope is not None and self.envelope.rcpt_tos and not arg
            refusal = self.event_handler.refuse_transaction() if busy else None
            if refusal is not None:
                await self.push(refusal)
                return
            await super().smtp_DATA(arg)

    return TrackedSMTP


async def start_server(
    handler: RelayHandler,
    host: str,
    port: int,
    *,
    hostname: str | None = None,
) -> asyncio.Server:
    """Listen for SMTP on ``host:port`` with ``handler``; return the asyncio server."""
    smtp = _smtp_class()
    loop = asyncio.get_running_loop()
    max_size = handler.relay.max_size
    name = hostname or socket.getfqdn()
    return await loop.create_server(
        lambda: smtp(
            handler,
            data_size_limit=max_size,
            enable_SMTPUTF8=True,
            hostname=name,
            ident="ct_alias relay",
        ),
        host=host,
        port=port,
    )


def run_server(
    handler: RelayHandler,
    host: str,
    port: int,
    *,
    hostname: str | None = None,
    grace: float = 30.0,
    ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop (see the module's description).

    On the signal the listening socket closes and idle client connections
    are closed with ``421``; hand-offs in flight get up to ``grace`` seconds
    to finish and answer their client; then every connection is closed.
    """

    async def main() -> None:
        server = await start_server(handler, host, port, hostname=hostname)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        address = server.sockets[0].getsockname()
        logger.info("listening on %s:%s", address[0], address[1])
        if ready is not None:
            ready((address[0], address[1]))
        try:
            await stop.wait()
            logger.info("stopping: no new connections, finishing hand-offs in flight")
            server.close()
            handler.stop()
            if not await handler.wait_idle(grace):
                logger.warning("stopped with hand-offs still in flight after %s s", grace)
            await asyncio.sleep(0)  # let the last replies reach their transports
            handler.close_connections()
            # since 3.12, wait_closed() waits for every client connection
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5.0)
        finally:
            handler.shutdown()

    asyncio.run(main())
