"""Finding addresses in free text, and the fields a relayed message may carry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ct_alias.mail import KEPT_FIELDS, PASSED_FIELDS, TEXT_FIELDS, address_candidates, has_bare_cr
from ct_alias.mail._allowlist import _CANDIDATE

#: What ends a run of address characters (the search pattern's excluded set, ASCII part).
_DELIMITERS = frozenset(' \t\r\n<>()[],;:"@')


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
    ("text", "found"),
    [
        ("a" * 200_000 + " @", set()),
        ("a" * 200_000 + "@", set()),
        ("x@" + "a" * 200_000 + " @ b", {"x@" + "a" * 200_000}),
        ("a." * 100_000 + "@", set()),
    ],
    ids=["run-then-at", "run-at", "at-run-at", "dots"],
)
def test_long_runs_without_an_address(text: str, found: set[str]) -> None:
    """Hostile runs of address characters give the same answers (their cost is a benchmark's)."""
    assert address_candidates(text) == found


@pytest.mark.parametrize("text", ["ab@c", "a.b@c", "a" * 50 + "@c", "x@" + "a" * 50 + "@c"])
def test_a_candidate_starts_only_where_a_run_starts(text: str) -> None:
    """A long run is tried once, not once from each of its characters (which was quadratic).

    A match may not begin right after an address character, so searching
    from inside a run finds nothing there: the search moves on to the next
    delimiter instead of retrying every suffix of the run.
    """
    for start in range(1, len(text)):
        if text[start - 1] not in _DELIMITERS:
            match = _CANDIDATE.match(text, start)
            assert match is None, (start, match)


@given(st.text(alphabet="ab.@ <>,;:", max_size=40))
def test_every_candidate_starts_at_a_run_start(text: str) -> None:
    for match in _CANDIDATE.finditer(text):
        assert match.start() == 0 or text[match.start() - 1] in _DELIMITERS


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
