"""Finding addresses in free text, and the fields a relayed message may carry."""

from __future__ import annotations

import time

import pytest

from ct_alias.mail import KEPT_FIELDS, PASSED_FIELDS, TEXT_FIELDS, address_candidates, has_bare_cr


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("no address here", set()),
        ("maria@example.com", {"maria@example.com"}),
        ("Maria@Example.COM.", {"maria@example.com"}),  # a sentence's full stop
        ('"maria"@example.com', {"maria@example.com"}),
        ("maria(me)@example.com", {"maria@example.com"}),
        ("maria @ example.com", {"maria@example.com"}),
        ("maria@\r\n example.com", {"maria@example.com"}),
        ("maria\uff20example.com", {"maria@example.com"}),  # full-width
        ("maria\ufe6bexample.com", {"maria@example.com"}),  # small commercial at
        ("@example.com", set()),  # no local part: not an address
        ("; @example.com", set()),
        ("joão@exãmple.com", {"joão@" + "exãmple.com".encode("idna").decode()}),
        ("a@b.example and c@d.example", {"a@b.example", "c@d.example"}),
    ],
)
def test_address_candidates(text: str, found: set[str]) -> None:
    assert address_candidates(text) == found


def test_comments_nested_past_the_passes_do_not_glue_words() -> None:
    deep = "(" * 20 + "x" + ")" * 20
    text = f"{deep}maria@example.com{deep}"
    assert address_candidates(text) == {"maria@example.com"}


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000 + " @",
        "a" * 200_000 + "@",
        "x@" + "a" * 200_000 + " @ b",
        "a." * 100_000 + "@",
    ],
    ids=["run-then-at", "run-at", "at-run-at", "dots"],
)
def test_address_candidates_is_linear(text: str) -> None:
    """A long run of address characters is read once, not once from each of its characters."""
    started = time.perf_counter()
    address_candidates(text)
    assert time.perf_counter() - started < 1.0  # it took minutes when the search was quadratic


def test_field_sets() -> None:
    assert KEPT_FIELDS == PASSED_FIELDS | TEXT_FIELDS
    assert not PASSED_FIELDS & TEXT_FIELDS
    for never in ("received", "return-path", "dkim-signature", "authentication-results", "sender"):
        assert never not in KEPT_FIELDS
    assert {"subject", "content-disposition"} <= TEXT_FIELDS
    assert {"date", "content-type", "mime-version", "auto-submitted"} <= PASSED_FIELDS


@pytest.mark.parametrize(
    ("block", "bare"),
    [
        (b"", False),
        (b"Subject: a\r\n", False),
        (b"Subject: a\n", False),
        (b"Subject: a\r", True),
        (b"Subject: a\rBcc: x\r\n", True),
        (b"Subject: a\r\r\n", True),
    ],
)
def test_has_bare_cr(block: bytes, bare: bool) -> None:
    assert has_bare_cr(block) is bare
