"""`ct-alias serve` as a mail system: exactly once, per-recipient answers, shutdown, isolation.

Each test runs the real `serve` process (as a user runs it) between an MTA-like
client and an aiosmtpd sink that fails as it is told to.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ct_alias import Policy, Tracker, storage_from_url
from ct_alias.errors import DeliveryError
from ct_alias.server import SMTPDeliverer

from .smtp_support import Serve, Sink, cli, free_port, message, mta_send, serve_command

# generated with secrets.token_urlsafe(32) for these tests
KEY = "KALk6Z7VEmmPnMwNVB7_KU5GiqfGlZ-yrDkCxzWf9Q0"
INDEX_KEY = "NHGJ_BAPSoc_1vdtJFyBRWZojY8umCszcHrOWGyYRNM"
DOMAIN = "ct.example.com"
CARRIER = "rastreio@transportadora.example.net"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "CT_ALIAS_DB": f"sqlite:///{tmp_path / 'relay.db'}",
        "CT_ALIAS_KEYS": KEY,
        "CT_ALIAS_DOMAIN": DOMAIN,
        "CT_ALIAS_INDEX_KEY": INDEX_KEY,
    }
    cli(environment, "db", "upgrade")
    return environment


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    if handler.stall is not None:
        handler.stall.set()
    controller.stop()


@pytest.fixture
def serving() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.kill()


@contextlib.contextmanager
def tracker_for(env: dict[str, str]) -> Iterator[Tracker]:
    """The same tracker `serve` builds from ``env`` (to make many aliases quickly)."""
    storage = storage_from_url(env["CT_ALIAS_DB"])
    try:
        yield Tracker(
            storage=storage,
            keys=[KEY],
            default_policy=Policy(domain=DOMAIN),
            index_key=INDEX_KEY,
        )
    finally:
        storage.close()  # type: ignore[attr-defined]


def make_aliases(env: dict[str, str], reals: list[str]) -> list[str]:
    """An alias for each real address, each in its own conversation ``o<n>``."""
    with tracker_for(env) as tracker:
        return [tracker.mask(r, conversation=f"o{n}").address for n, r in enumerate(reals)]


def timeline(env: dict[str, str], conversation: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli(env, "timeline", conversation, "--json"))
    return data


def events(env: dict[str, str], conversation: str, name: str) -> list[dict[str, object]]:
    with tracker_for(env) as tracker:
        return [dict(e.data) for e in tracker.timeline(conversation).events if e.name == name]


# -- exactly once -------------------------------------------------------------


def test_exactly_once_with_a_temporary_and_a_permanent_refusal(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, port = sink
    busy = "ana@busy.example.org"  # its domain defers twice, then takes it
    gone = "bruno@example.com.br"  # refused for good
    fine = "carla@example.net"
    aliases = {
        real: cli(env, "mask", real, "--conversation", f"order-{n}")
        for n, real in enumerate((busy, gone, fine))
    }
    downstream.defer["busy.example.org"] = 2
    downstream.refuse.add(gone)
    server = Serve(env, port)
    serving.append(server)
    envelope = [aliases[busy], aliases[gone], aliases[fine], aliases[fine].upper()]
    final = mta_send(server.port, CARRIER, envelope, message(CARRIER, ", ".join(envelope)))

    assert downstream.copies(busy) == 1
    assert downstream.copies(fine) == 1
    assert downstream.copies(gone) == 0
    assert final[aliases[busy]][0] == 250
    assert final[aliases[fine]][0] == 250
    assert final[aliases[fine].upper()][0] == 250  # the same alias again: one copy
    code, text = final[aliases[gone]]
    assert code == 550
    assert b"5.1.1" in text
    assert gone.encode() not in text  # the downstream's text, which names it, is not passed on
    for _, rcpts, _ in downstream.received:
        assert len(rcpts) == 1  # one downstream recipient per transaction
    # the timelines say what happened: delivered once, or failed (soft, then hard)
    assert [m["subject"] for m in timeline(env, "order-0")["messages"]] == ["test"]
    soft = events(env, "order-0", "delivery-failed")
    assert [(e["code"], e["status"], e["hard"]) for e in soft] == [(451, "4.2.0", False)] * 2
    assert timeline(env, "order-1")["messages"] == []
    (hard,) = events(env, "order-1", "delivery-failed")
    assert (hard["code"], hard["status"], hard["hard"], hard["role"]) == (
        550,
        "5.1.1",
        True,
        "customer",
    )
    assert gone not in json.dumps(timeline(env, "order-1"))
    assert len(timeline(env, "order-2")["messages"]) == 1
    assert server.stop() == 0


def test_nobody_told_5xx_got_it_under_many_retries(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, port = sink
    reals = [f"cliente{n}@{'slow' if n % 2 else 'fast'}.example.org" for n in range(6)]
    aliases = make_aliases(env, reals)
    downstream.defer["slow.example.org"] = 5
    downstream.refuse.add(reals[4])
    server = Serve(env, port)
    serving.append(server)
    final = mta_send(server.port, CARRIER, aliases, message(CARRIER, "undisclosed-recipients:;"))
    for alias, real in zip(aliases, reals, strict=True):
        code, _ = final[alias]
        assert downstream.copies(real) == (1 if code == 250 else 0), (real, code)
        assert code == (550 if real == reals[4] else 250)


def test_partial_acceptance_downstream_is_reported_per_recipient(
    sink: tuple[Sink, int],
) -> None:
    downstream, port = sink
    downstream.refuse.add("gone@example.org")
    downstream.defer["later.example.org"] = 1
    deliverer = SMTPDeliverer("127.0.0.1", port)
    data = message(CARRIER, "x@example.org")
    refused = deliverer.deliver(
        "", ["ok@example.org", "gone@example.org", "x@later.example.org"], data, smtputf8=False
    )
    assert set(refused) == {"gone@example.org", "x@later.example.org"}
    assert (refused["gone@example.org"].code, refused["gone@example.org"].status) == (550, "5.1.1")
    assert not refused["gone@example.org"].temporary
    assert refused["x@later.example.org"].temporary
    assert "gone@example.org" not in str(refused["gone@example.org"])
    assert downstream.copies("ok@example.org") == 1
    with pytest.raises(DeliveryError) as info:
        deliverer.deliver("", ["gone@example.org"], data, smtputf8=False)
    assert (info.value.code, info.value.status, info.value.temporary) == (550, "5.1.1", False)
    assert downstream.copies("gone@example.org") == 0


def test_one_alias_per_transaction_at_rcpt(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    first = cli(env, "mask", "ana@example.org", "--conversation", "order-1")
    second = cli(env, "mask", "bia@example.org", "--conversation", "order-1")
    server = Serve(env, sink[1])
    serving.append(server)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(CARRIER)
        assert client.rcpt(first)[0] == 250
        assert client.rcpt(f"<{first.upper()}>")[0] == 250  # the same alias: collapsed
        code, text = client.rcpt(second)
        assert (code, text[:5]) == (452, b"4.5.3")
        assert client.rcpt("1" + "0" * 39 + "@" + DOMAIN)[0] == 550  # refusals stay refusals
        assert client.data(message(CARRIER, first))[0] == 250
    assert sink[0].received[0][1] == ["ana@example.org"]
    assert len(sink[0].received) == 1


# -- isolation ------------------------------------------------------------------


def test_rcpt_is_answered_while_the_downstream_stalls(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, port = sink
    aliases = make_aliases(env, [f"c{n}@example.org" for n in range(3)])
    server = Serve(env, port, "--handoffs", "2")
    serving.append(server)
    downstream.stall = threading.Event()
    replies: list[int] = []

    def send(alias: str) -> None:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
            client.ehlo("client.test")
            client.mail(CARRIER)
            client.rcpt(alias)
            replies.append(client.data(message(CARRIER, alias))[0])

    senders = [threading.Thread(target=send, args=(a,)) for a in aliases[:2]]
    for sender in senders:
        sender.start()
    downstream.wait_data_started(2)  # both hand-offs are stuck downstream
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as probe:
        probe.ehlo("mx.test")
        probe.mail("")
        started = time.monotonic()
        code, _ = probe.rcpt(aliases[2])
        rcpt_seconds = time.monotonic() - started
        assert code == 250
        assert rcpt_seconds < 1.0, rcpt_seconds
        # every hand-off is busy: refused before the content is sent, to be retried
        code, text = probe.docmd("DATA")
        assert (code, text[:5]) == (451, b"4.3.2")
    downstream.stall.set()
    for sender in senders:
        sender.join(60)
    assert replies == [250, 250]
    print(f"RCPT answered in {rcpt_seconds * 1000:.1f} ms while 2/2 hand-offs stalled")


def test_memory_does_not_grow_with_recipients(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    port = sink[1]
    aliases = make_aliases(env, [f"c{n}@example.org" for n in range(50)])
    line = b"0123456789abcdef" * 4 + b"\r\n"  # 66 bytes
    data = message(CARRIER, "undisclosed-recipients:;", line * (5 * 1024 * 1024 // len(line)))
    growth = {}
    for count in (1, 50):
        server = Serve(env, port, max_size=8 * 1024 * 1024)
        serving.append(server)
        before = server.memory("VmRSS")
        final = mta_send(server.port, CARRIER, aliases[:count], data)
        assert {code for code, _ in final.values()} == {250}
        growth[count] = server.memory("VmHWM") - before
        assert server.stop() == 0
    assert len(sink[0].received) == 51
    print(
        f"peak growth: 1 alias {growth[1] / 2**20:.1f} MiB, 50 aliases {growth[50] / 2**20:.1f} MiB"
    )
    assert growth[50] < 2 * growth[1], growth


# -- shutdown -------------------------------------------------------------------


def twice(command: Callable[[], object]) -> None:
    command()
    command()


def test_sigterm_with_an_idle_client_exits_at_once(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    server = Serve(env, sink[1])
    serving.append(server)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.test")
        started = time.monotonic()
        assert server.stop(timeout=5) == 0
        seconds = time.monotonic() - started
        with pytest.raises(smtplib.SMTPServerDisconnected):
            twice(client.noop)  # the first may read the 421
    assert seconds < 5
    print(f"exited {seconds:.2f} s after SIGTERM with an idle client ({sys.version.split()[0]})")


def test_sigterm_finishes_the_hand_off_in_flight(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    downstream, port = sink
    alias = cli(env, "mask", "ana@example.org", "--conversation", "order-1")
    server = Serve(env, port)
    serving.append(server)
    downstream.stall = threading.Event()
    replies: list[int] = []

    def send() -> None:
        client = smtplib.SMTP("127.0.0.1", server.port, timeout=60)
        client.ehlo("client.test")
        client.mail(CARRIER)
        client.rcpt(alias)
        replies.append(client.data(message(CARRIER, alias))[0])
        client.close()  # the server closes with 421 once it has answered

    sender = threading.Thread(target=send)
    sender.start()
    downstream.wait_data_started(1)
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    refused = False
    while not refused and time.monotonic() < deadline:  # stops accepting at once
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as probe:
                probe.recv(1024)  # the greeting (or the 421 of an idle connection closed)
        except ConnectionRefusedError:
            refused = True
        except (ConnectionResetError, TimeoutError):  # accepted just before the listener closed
            continue
    assert refused
    assert server.process.poll() is None  # still finishing the hand-off
    downstream.stall.set()
    sender.join(60)
    assert replies == [250]
    assert server.wait(timeout=10) == 0
    assert downstream.copies("ana@example.org") == 1


# -- start-up -------------------------------------------------------------------


def run_serve(
    env: dict[str, str], deliver_port: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(deliver_port, *extra),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "database unavailable"),
        ("sqlite:///{tmp}/never-upgraded.db", "ct-alias db upgrade"),
    ],
    ids=["unreachable", "no-schema"],
)
def test_serve_refuses_to_start_without_its_database(
    env: dict[str, str], sink: tuple[Sink, int], tmp_path: Path, url: str, says: str
) -> None:
    done = run_serve({**env, "CT_ALIAS_DB": url.format(tmp=tmp_path)}, sink[1])
    assert done.returncode == 1
    assert "listening" not in done.stdout
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_refuses_to_start_without_its_downstream(env: dict[str, str]) -> None:
    port = free_port()
    done = run_serve(env, port)
    assert done.returncode == 1
    assert "listening" not in done.stdout
    assert f"downstream 127.0.0.1:{port} unavailable" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_waits_for_its_downstream(env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        serve_command(port, "--wait"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    try:
        assert process.stderr is not None
        assert process.stdout is not None
        waiting = process.stderr.readline()
        assert f"waiting: downstream 127.0.0.1:{port} unavailable" in waiting
        controller.start()
        assert "listening on" in process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
        controller.stop()
    assert process.returncode == 0


def test_a_storage_failure_is_one_log_line(
    env: dict[str, str], sink: tuple[Sink, int], serving: list[Serve]
) -> None:
    alias = cli(env, "mask", "ana@example.org", "--conversation", "order-1")
    server = Serve(env, sink[1])
    serving.append(server)
    database = env["CT_ALIAS_DB"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as db:  # the storage breaks under it
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            db.execute(f'DROP TABLE "{table}"')
        db.commit()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail(CARRIER)
        for _ in range(3):
            code, text = client.rcpt(alias)
            assert (code, text[:5]) == (451, b"4.3.0")
    assert server.stop() == 0
    errors = [line for line in server.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 3, server.stderr
    assert "Traceback" not in server.stderr
    assert all("StorageError" in line for line in errors), errors
