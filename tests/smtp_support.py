"""What the server tests share: a downstream sink, `ct-alias serve` as a process, an MTA client."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: How long a stalled downstream holds a message at most (a bound, never waited out in a pass).
STALL_LIMIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sink:
    """The downstream MTA: keeps what it receives, and fails as it is told to.

    Attributes:
        received: (envelope sender, recipients, message) per accepted transaction.
        defer: domain -> how many more RCPTs to answer 451 (a temporary failure).
        refuse: recipients answered 550 5.1.1, quoting the address as real MTAs do.
        stall: when set, DATA waits until it is released (or STALL_LIMIT).
        data_started: how many DATA commands it has begun.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.defer: dict[str, int] = {}
        self.refuse: set[str] = set()
        self.stall: threading.Event | None = None
        self.data_started = 0
        self.started = threading.Condition()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        domain = address.rpartition("@")[2]
        if self.defer.get(domain, 0) > 0:
            self.defer[domain] -= 1
            return f"451 4.2.0 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.started:
            self.data_started += 1
            self.started.notify_all()
        if self.stall is not None:
            stall = self.stall
            await asyncio.get_running_loop().run_in_executor(None, stall.wait, STALL_LIMIT)
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 OK"

    def wait_data_started(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` DATA commands have begun (an event, not a sleep)."""
        with self.started:
            assert self.started.wait_for(lambda: self.data_started >= count, timeout), (
                f"only {self.data_started} of {count} DATA commands arrived"
            )

    def copies(self, recipient: str) -> int:
        """How many copies ``recipient`` received."""
        return sum(rcpts.count(recipient) for _, rcpts, _ in self.received)


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ct_alias", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def serve_command(deliver_port: int, *extra: str, max_size: int = 100000) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ct_alias",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--deliver",
        f"smtp://127.0.0.1:{deliver_port}",
        "--max-size",
        str(max_size),
        "--hostname",
        "relay.test",
        *extra,
    ]


class Serve:
    """`ct-alias serve` as a user runs it, in its own process."""

    def __init__(
        self, env: dict[str, str], deliver_port: int, *extra: str, max_size: int = 100000
    ) -> None:
        # its log goes to a file: a pipe nobody reads fills up and stops the server
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop/kill
        self.process = subprocess.Popen(
            serve_command(deliver_port, *extra, max_size=max_size),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "listening on" in line, self.log()
        self.port = int(line.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        self.stderr = ""

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=timeout)
        self.stderr = self.log()
        self._log.close()
        return self.process.returncode

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to end by itself (after a signal already sent)."""
        self.process.communicate(timeout=timeout)
        self.stderr = self.log()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=30)
        if not self._log.closed:
            self._log.close()

    def memory(self, field: str = "VmHWM") -> int:
        """A memory figure of the process, in bytes (VmHWM: its peak resident set)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")


def message(sender: str, to: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: test\r\n"
        f"Message-ID: <{time.time_ns()}@test>\r\n\r\n"
    ).encode() + body


def mta_send(  # noqa: C901 - one branch per SMTP reply
    port: int, sender: str, recipients: list[str], data: bytes, *, queue_runs: int = 10
) -> dict[str, tuple[int, bytes]]:
    """Send as an MTA does, and return each recipient's final reply.

    Recipients answered ``452`` at RCPT go in a new transaction at once; those
    answered 4xx otherwise (at RCPT or at the end of DATA) wait for the next
    queue run; 5xx is final (the MTA bounces); 250 after DATA is final.
    """
    final: dict[str, tuple[int, bytes]] = {}
    pending = list(recipients)
    for _ in range(queue_runs):
        if not pending:
            break
        later: list[str] = []
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("mta.test")
            while pending:
                client.mail(sender)
                accepted, next_transaction = [], []
                for rcpt in pending:
                    code, text = client.rcpt(rcpt)
                    if code == 250:
                        accepted.append(rcpt)
                    elif code >= 500:
                        final[rcpt] = (code, text)
                    elif code == 452:
                        next_transaction.append(rcpt)
                    else:
                        later.append(rcpt)
                if accepted:
                    code, text = client.data(data)
                    for rcpt in accepted:
                        if code == 250 or code >= 500:
                            final[rcpt] = (code, text)
                        else:
                            later.append(rcpt)
                else:
                    client.rset()
                pending = next_transaction
        pending = later
    assert not pending, f"still queued after {queue_runs} runs: {pending}"
    return final
