"""Outgrowing one machine: several application processes masking on one PostgreSQL.

Each process has its own tracker (the same secrets, as replicas of one
application have) and its own connection pool; all of them mask the same
(order, address) pairs at once, in several threads each. Every pair must get
one alias, the same in every process, with one ``alias-created`` entry, and
no call may fail.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from ct_alias.storage.sql import SQLStorage

from .sql_servers import Target, clear

SRC = str(Path(__file__).resolve().parents[1] / "src")
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}

CHILD = """
import json, sys, threading
from ct_alias.storage.sql import SQLStorage
from ct_alias.testing import make_tracker

url, options, keys, index_key, pairs, threads = json.loads(sys.argv[1])
tracker = make_tracker(SQLStorage(url, **options), keys=keys, index_key=index_key)
tracker.timeline("warm-up")  # connected before the start signal
results, errors = {}, []

def run(i):
    for order, address in pairs[i::threads]:
        try:
            results[order + " " + address] = tracker.mask(address, conversation=order).address
        except Exception as exc:
            errors.append(repr(exc))

workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
print("ready", flush=True)
sys.stdin.readline()
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps({"results": results, "errors": errors}))
"""


def test_two_processes_masking_the_same_pairs_get_one_alias_each(
    postgresql: Target, postgresql_store: SQLStorage
) -> None:
    clear(postgresql_store)
    keys, index_key = [secrets.token_urlsafe(32)], secrets.token_urlsafe(32)
    # Few orders, many addresses: the processes meet on the same slots all the time.
    pairs = [(f"order-{i % 7}", f"buyer.{i}@example.com") for i in range(120)]
    argument = json.dumps([postgresql.url, postgresql.options, keys, index_key, pairs, 4])
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, argument],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    reports = []
    for (out, err), child in zip(outputs, children, strict=True):
        assert child.returncode == 0, err
        reports.append(json.loads(out))
    assert [report["errors"] for report in reports] == [[], []]
    first, second = (report["results"] for report in reports)
    assert len(first) == len(pairs)
    assert first == second  # the same alias for each pair in both processes
    table = postgresql_store.tables
    with postgresql_store.engine.connect() as conn:
        aliases = conn.execute(
            sa.select(table.aliases.c.conversation, sa.func.count()).group_by(
                table.aliases.c.conversation
            )
        ).all()
        created = conn.execute(
            sa.select(sa.func.count())
            .select_from(table.timeline)
            .where(table.timeline.c.name == "alias-created")
        ).scalar()
    assert sum(count for _, count in aliases) == len(pairs)
    assert created == len(pairs)
