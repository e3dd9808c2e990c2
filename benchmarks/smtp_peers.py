#!/usr/bin/env python
"""The SMTP servers the relay benchmark talks to, each run as a process of its own.

    python benchmarks/smtp_peers.py sink PORT
        accepts every message and throws it away (the downstream MTA)
    python benchmarks/smtp_peers.py forwarder PORT SINK_PORT
        the floor of ``ct-alias serve``: a bare aiosmtpd server that hands each
        message, as it came, to the sink on a new SMTP connection from a pool
        of 8 threads (as ``serve`` hands off), and answers 250 once the sink
        took it

Both need only aiosmtpd (the ``smtp`` extra, part of ``bench``).
"""

from __future__ import annotations

import asyncio
import smtplib
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"


class Sink:
    """Takes every message."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        del server, session, envelope
        return "250 2.0.0 OK"


class Forwarder:
    """Hands each message to the sink before answering, in a thread (smtplib blocks)."""

    def __init__(self, sink_port: int) -> None:
        self.sink_port = sink_port
        self.pool = ThreadPoolExecutor(8)

    def send(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        with smtplib.SMTP(HOST, self.sink_port, local_hostname="floor") as client:
            client.sendmail(mail_from, rcpt_tos, data)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        del server, session
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self.pool,
            self.send,
            envelope.mail_from,
            list(envelope.rcpt_tos),
            envelope.original_content,
        )
        return "250 2.0.0 OK: relayed"


async def serve(handler: object, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench", enable_SMTPUTF8=True), HOST, port
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "sink":
        asyncio.run(serve(Sink(), int(argv[1])))
    elif len(argv) == 3 and argv[0] == "forwarder":
        asyncio.run(serve(Forwarder(int(argv[2])), int(argv[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
