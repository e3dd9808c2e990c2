"""The tracker's argument checks (ct_alias._arguments): refusals, and what they accept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ct_alias import (
    ConfigurationError,
    FrozenClock,
    InvalidArgument,
    MemoryStorage,
    Policy,
    Tracker,
)

from .hostile import DOMAIN, START, make_tracker

CUSTOMER = "maria@example.com.br"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tracker(clock: FrozenClock) -> Tracker:
    return make_tracker(MemoryStorage(), clock)


def test_tracker_argument_refusals(tracker: Tracker, clock: FrozenClock) -> None:
    alias = tracker.mask(CUSTOMER, conversation="o1")
    with pytest.raises(InvalidArgument):
        tracker.unmask(alias.address, reason=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.unmask(alias.address, reason="line\nbreak")
    with pytest.raises(InvalidArgument):
        tracker.purge(older_than=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.reactivate("o1", for_=timedelta(0))
    with pytest.raises(InvalidArgument):
        tracker.end("o1", grace=timedelta(days=-1))
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", at=START.replace(tzinfo=None))
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", data={"x": float("nan")})
    with pytest.raises(InvalidArgument):
        tracker.record_event("o1", "invoiced", data=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.record_message("o1", "text", direction="inbound")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        tracker.record_message("o1", b"Subject: x\r\n\r\n", direction="sideways")
    with pytest.raises(InvalidArgument):
        tracker.timeline("o1", limit=0)
    with pytest.raises(InvalidArgument):
        tracker.timeline("o1", after="not-a-cursor")
    with pytest.raises(ConfigurationError):
        tracker.rotate_address_keys()
    assert not tracker.owns(None)
    assert not tracker.owns(42)
    assert tracker.owns(alias.address.upper())
    assert not tracker.owns("maria@example.com.br")


def test_record_message_takes_bytes_like_objects(tracker: Tracker) -> None:
    data = b"Subject: hi\r\nMessage-ID: <a@b.example>\r\n\r\nHello\r\n"
    first = tracker.record_message("o1", bytearray(data), direction="inbound")
    again = tracker.record_message("o1", memoryview(data), direction="inbound")
    assert first == again
    assert len(tracker.timeline("o1").messages) == 1


def test_rotate_address_keys_refuses_a_bad_batch_size(clock: FrozenClock) -> None:
    pytest.importorskip("cryptography")
    tracker = Tracker(
        storage=MemoryStorage(),
        keys=["jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE"],
        default_policy=Policy(domain=DOMAIN),
        clock=clock,
        index_key="C0iyXJYdjAaj3nfYLCx8LBPsnL7Gv1271_onw-toqQQ",
        address_keys="a-single-address-key-of-enough-length",
    )
    alias = tracker.mask(CUSTOMER, conversation="o1")
    assert tracker.unmask(alias.address).real_address == CUSTOMER
    for bad in (0, -1, "10", 1.5):
        with pytest.raises(InvalidArgument):
            tracker.rotate_address_keys(batch_size=bad)  # type: ignore[arg-type]
