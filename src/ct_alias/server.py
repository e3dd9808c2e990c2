r"""The SMTP server: an aiosmtpd shell around the sans-IO :class:`~ct_alias.relay.Relay`.

Needs the ``smtp`` extra (aiosmtpd). ``ct-alias serve`` runs it::

    ct-alias serve --listen 127.0.0.1:2525 --deliver smtp://127.0.0.1:25 \\
        --domain ct.example.com --db sqlite:///ct_alias.db

* Each ``RCPT TO`` is answered with the relay's decision, so refused mail is
  bounced by the sender's own server (no backscatter).
* ``SIZE`` is advertised and enforced; ``SMTPUTF8`` is accepted and used
  downstream when the downstream server supports it.
* Accepted mail is forwarded to the downstream MTA with :mod:`smtplib`; when
  the downstream fails temporarily the client gets ``451`` and retries, so
  nothing accepted is ever lost.
* SIGTERM (or SIGINT) stops accepting connections, lets messages in flight
  finish, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import smtplib
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .errors import DeliveryError, MissingExtra
from .relay import Outcome, Relay

__all__ = ["Deliverer", "RelayHandler", "SMTPDeliverer", "run_server", "start_server"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Deliverer(Protocol):
    """Where accepted mail goes: one method, easy to replace."""

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> None:
        """Hand one message to the next hop.

        Raises:
            DeliveryError: it was not taken (``temporary`` says whether to retry).
        """
        ...


class SMTPDeliverer:
    """Delivers to a downstream SMTP server (an MTA such as Postfix) with smtplib.

    Args:
        host: the downstream server.
        port: its port.
        timeout: seconds to wait for it.
        local_hostname: the name to greet it with (default: this host's FQDN).
    """

    def __init__(
        self, host: str, port: int = 25, *, timeout: float = 30.0, local_hostname: str | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SMTPDeliverer({self.host!r}, {self.port})"

    def deliver(
        self, mail_from: str, rcpt_tos: Sequence[str], message: bytes, *, smtputf8: bool
    ) -> None:
        """Send ``message`` in one SMTP transaction; see :meth:`Deliverer.deliver`."""
        try:
            with smtplib.SMTP(
                self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
            ) as client:
                client.ehlo_or_helo_if_needed()
                options: list[str] = []
                if smtputf8:
                    if not client.has_extn("smtputf8"):
                        raise DeliveryError(
                            553, "the downstream server does not support SMTPUTF8", temporary=False
                        )
                    options.append("SMTPUTF8")
                if client.has_extn("size"):
                    options.append(f"SIZE={len(message)}")
                refused = client.sendmail(mail_from, list(rcpt_tos), message, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(code for code, _ in exc.recipients.values())
            raise DeliveryError(code, "every recipient was refused", temporary=code < 500) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                exc.smtp_code, _text(exc.smtp_error), temporary=exc.smtp_code < 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(451, f"{type(exc).__name__}: {exc}", temporary=True) from exc
        if refused:
            code = min(code for code, _ in refused.values())
            raise DeliveryError(code, f"{len(refused)} recipient(s) refused", temporary=code < 500)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RelayHandler:
    """The aiosmtpd handler: RCPT and DATA answered by the relay, delivery by a deliverer.

    The relay and the deliverer are synchronous (they may wait on a database
    or a socket); they run in the default thread pool, never on the event loop.
    """

    def __init__(self, relay: Relay, deliverer: Deliverer) -> None:
        self.relay = relay
        self.deliverer = deliverer
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args))

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept or refuse one recipient with the relay's decision."""
        del server, session, rcpt_options
        refusal: Outcome | None = await self._run(self.relay.check_recipient, address)
        if refusal is not None:
            return refusal.reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        """Relay the message: all accepted recipients are delivered, or the client retries."""
        del server, session
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._data(envelope)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _data(self, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        result = await self._run(
            self.relay.handle, envelope.mail_from or "", list(envelope.rcpt_tos), data
        )
        temporary = [o for o in result.outcomes if 400 <= o.code < 500]
        if temporary:
            return temporary[0].reply
        accepted = result.accepted
        if not accepted:
            return result.outcomes[0].reply
        if len(accepted) < len(result.outcomes):
            # A recipient stopped working between RCPT and DATA: let the client
            # retry, so the RCPT answers sort the recipients out. Nothing is lost.
            return "451 4.2.0 a recipient changed state, please try again"
        smtputf8 = bool(getattr(envelope, "smtp_utf8", False)) or not all(
            o.deliver_to is not None and o.deliver_to.isascii() for o in accepted
        )
        groups: dict[tuple[str, bytes], list[str]] = {}
        for outcome in accepted:
            if outcome.message is None or outcome.deliver_to is None:  # pragma: no cover
                raise AssertionError("an accepted outcome carries a message and an address")
            groups.setdefault((outcome.mail_from or "", outcome.message), []).append(
                outcome.deliver_to
            )
        for (mail_from, message), rcpts in groups.items():
            try:
                await self._run(
                    functools.partial(self.deliverer.deliver, smtputf8=smtputf8),
                    mail_from,
                    rcpts,
                    message,
                )
            except DeliveryError as exc:
                # the downstream's own text often quotes the (real) recipient
                logger.warning(
                    "downstream delivery failed with %s (%s)",
                    exc.code,
                    "temporary" if exc.temporary else "permanent",
                )
                if exc.temporary:
                    return "451 4.4.1 downstream server unavailable, please try again"
                return f"554 5.0.0 downstream server refused the message ({exc.code})"
        return "250 2.0.0 OK: relayed"

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no message is being relayed; ``False`` if ``timeout`` ran out."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _smtp_class() -> Any:
    try:
        from aiosmtpd.smtp import SMTP  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise MissingExtra("smtp", "aiosmtpd", "The SMTP server") from None
    return SMTP


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
    return await loop.create_server(
        lambda: smtp(
            handler,
            data_size_limit=max_size,
            enable_SMTPUTF8=True,
            hostname=hostname or socket.getfqdn(),
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
    """Serve until SIGTERM or SIGINT, then finish messages in flight (up to ``grace`` s)."""

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
        await stop.wait()
        logger.info("stopping: no new connections, finishing messages in flight")
        server.close()
        if not await handler.wait_idle(grace):
            logger.warning("stopped with messages still in flight after %s s", grace)
        await server.wait_closed()

    asyncio.run(main())
