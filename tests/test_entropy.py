"""Random bytes read ahead: never the same bytes twice, in threads or across a fork."""

from __future__ import annotations

import os
import threading
import warnings
from datetime import UTC, datetime

import pytest

from ct_alias import _entropy
from ct_alias import codec as codec_module
from ct_alias._entropy import BLOCK, random_bytes
from ct_alias.codec import COMPLEX_V1, AliasCodec


def test_slices_of_one_block_are_handed_out_once() -> None:
    taken = [random_bytes(12) for _ in range(3 * BLOCK // 12)]
    assert all(len(piece) == 12 for piece in taken)
    # 96 random bits each: a repeat means a slice was handed out twice
    assert len(set(taken)) == len(taken)


def test_a_request_larger_than_a_block_is_read_directly() -> None:
    big = random_bytes(BLOCK + 1)
    assert len(big) == BLOCK + 1
    assert random_bytes(BLOCK + 1) != big


def test_a_slice_that_does_not_fit_starts_a_new_block() -> None:
    reader = _entropy._ReadAhead()  # noqa: SLF001 - a private reader, not the shared one
    first = reader.take(BLOCK - 5)
    second = reader.take(12)  # does not fit in the 5 bytes left
    assert len(first) == BLOCK - 5
    assert len(second) == 12
    assert second not in first


def test_threads_never_get_the_same_bytes() -> None:
    per_thread = 2_000
    results: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(len(results))

    def work(out: list[bytes]) -> None:
        start.wait()
        out.extend(random_bytes(12) for _ in range(per_thread))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [piece for out in results for piece in out]
    assert len(every) == per_thread * len(results)
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    random_bytes(12)  # the parent holds a block with bytes still to hand out
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock; the
        # child here only writes to a pipe and leaves
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent, then out at once
        try:
            os.write(write, random_bytes(12))
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 64)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    parent = random_bytes(12)
    assert len(child) == 12
    assert child != parent


def test_tokens_get_their_ids_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[bytes] = []

    def counted(size: int) -> bytes:
        handed.append(random_bytes(size))
        return handed[-1]

    monkeypatch.setattr(codec_module, "random_bytes", counted)
    codec = AliasCodec(["S1alFPqm6IPF4kPzkv71megAVcJ58WFIXHnKs30iOyc"])
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    tokens = [codec.encode(COMPLEX_V1, expires) for _ in range(1_000)]
    assert [codec.decode(COMPLEX_V1, token).id for token in tokens] == handed
    assert len(set(handed)) == 1_000
