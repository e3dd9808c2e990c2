"""SQLStorage.rule_entries: a timeline as the rules read it, a message's data reduced to its id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attrs import evolve
from hypothesis import example, given
from hypothesis import strategies as st

from ct_alias.storage import RuleScan
from ct_alias.storage.sql import SQLStorage
from ct_alias.storage.sql.schema import JSONText
from ct_alias.storage.sql.statements import RULE_KEYS, rule_data
from ct_alias.timeline import EntryKind, TimelineEntry

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def stored(data: dict[str, Any]) -> str:
    """``data`` as the SQL storage writes it."""
    text = JSONText().process_bind_param(data, None)  # type: ignore[arg-type]
    assert text is not None
    return text


def reduced(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in RULE_KEYS if key in data}


def message(mid: object, *, sealed: bool = False, **more: Any) -> dict[str, Any]:
    """A message entry's data in the tracker's order: messageId first, the seal mark last."""
    data: dict[str, Any] = {"messageId": mid, "subject": "Entrega", **more}
    if sealed:
        data["sealed"] = True
    return data


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(["messageId", "sealed", "subject", "from", "messageid", ""]) | st.text(
    max_size=6
)


@given(st.dictionaries(_KEYS, _JSON, max_size=5))
@example(message("a@b"))
@example(message("a@b", sealed=True))
@example(message(None))
@example(message(7))
@example(message("x", sealed=True, subject="sealed"))  # the mark's name as a value
@example(message("x", note={"messageId": "y"}))  # the id's name nested
@example({"subject": "s", "messageId": "x", "sealed": True})  # another order
@example({"messageId": "x", "sealed": False})
@example({"messageId": "x", "sealed": True, "n": 1})  # the mark not last
@example({"messageId": '"messageId"', "sealed": True})
def test_rule_data_is_the_full_decode_reduced(data: dict[str, Any]) -> None:
    text = stored(data)
    assert rule_data(text) == reduced(json.loads(text))


def test_rule_data_of_duplicate_keys_takes_the_last_as_json_does() -> None:
    text = '{"messageId":"first","n":1,"messageId":"second"}'
    assert rule_data(text) == {"messageId": "second"}


def test_rule_data_of_text_that_is_not_json() -> None:
    for text in ('{"messageId":', "nope", '{"subject":"s"'):
        with pytest.raises(ValueError, match=r"Expecting|Extra data"):
            rule_data(text)
    # a row cut after its id: only the id is read, as the rules need (entries() would raise)
    assert rule_data('{"messageId":"x"') == {"messageId": "x"}


def test_rule_entries_are_entries_with_a_messages_data_reduced(sql_store: SQLStorage) -> None:
    assert isinstance(sql_store, RuleScan)
    datas = [
        message("m1@example.com", to=[{"name": "Maria", "ref": "k1"}]),
        message("ct2.c2VhbGVk", sealed=True, firstWords="ct2.b3RoZXI"),
        message(None),
        {"subject": "no id"},
    ]
    for n, data in enumerate(datas):
        sql_store.append(
            TimelineEntry(
                "o", EntryKind.MESSAGE, "inbound", T0 + timedelta(minutes=n), data, store="s"
            )
        )
    sql_store.append(
        TimelineEntry(
            "o", EntryKind.EVENT, "sender-blocked", T0, {"slot": "x", "n": [1]}, store="s"
        )
    )
    sql_store.append(TimelineEntry("other", EntryKind.EVENT, "delivered", T0, {}, store="s"))
    for after in (None, (T0, -1), (T0 + timedelta(minutes=1), 0)):
        for limit in (1, 2, 500):
            whole = sql_store.entries("o", store="s", after=after, limit=limit)
            ruled = sql_store.rule_entries("o", store="s", after=after, limit=limit)
            expected = [
                evolve(e, data=reduced(dict(e.data))) if e.kind is EntryKind.MESSAGE else e
                for e in whole
            ]
            assert ruled == expected
