"""The value check and the total JSON reader of `sync` (issue 13), as pure properties."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.batch import BodyDecodeError, decode, loads, loads_screened
from sync.clock import ClockFormatError, HLCTimestamp
from sync.records import BatchFormatError, Change, parse_push
from sync.storage import InvalidCursor, decode_cursor
from sync.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    OutOfRangeNumber,
    ascii_digits,
    nests_deeper,
    parse_constant,
    parse_float,
    parse_int,
    unsafe_values,
)
from tests.reliability.hostile import deep, dumps, hostile_text, hostile_values


@given(hostile_text)
def test_text_is_flagged_exactly_when_it_cannot_be_stored_and_served(text: str) -> None:
    flagged = bool(unsafe_values({"notes": text}))
    try:
        text.encode("utf-8")
        servable = "\x00" not in text
    except UnicodeEncodeError:
        servable = False
    assert flagged is not servable


@given(st.integers(-(2**70), 2**70))
def test_an_integer_is_flagged_exactly_when_it_is_beyond_64_bits(number: int) -> None:
    assert bool(unsafe_values([number])) is not (INT64_MIN <= number <= INT64_MAX)


@pytest.mark.parametrize("literal", ["9" * 5000, "-" + "1" * 20, "1e400", "NaN", "-Infinity"])
def test_a_number_the_reader_cannot_represent_is_a_marker_the_check_names(literal: str) -> None:
    value = loads('{"patients": ' + literal + "}")
    assert isinstance(value["patients"], OutOfRangeNumber)
    assert list(unsafe_values(value, "data")) == ["data.patients"]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1000, 100_000])
def test_a_body_nested_too_deep_is_a_decode_error(levels: int) -> None:
    with pytest.raises(BodyDecodeError, match="deeper than"):
        decode(deep(levels).encode(), content_encoding=None, max_bytes=10**7)


def test_a_body_at_the_depth_limit_is_read() -> None:
    assert decode(deep(MAX_DEPTH).encode(), content_encoding=None, max_bytes=10**7)


@settings(max_examples=300)
@given(st.text())
def test_the_reader_is_total_over_any_text(text: str) -> None:
    with contextlib.suppress(BodyDecodeError):
        loads(text)


@settings(max_examples=300)
@given(
    st.one_of(
        hostile_values,
        st.fixed_dictionaries(
            {"device_id": st.just("tab"), "batch_id": st.just("b1")},
            optional={
                "changes": st.lists(
                    st.one_of(hostile_values, st.dictionaries(hostile_text, hostile_values)),
                    max_size=4,
                ),
                "clock": hostile_values,
                "sent_at": hostile_values,
                "compact": hostile_values,
            },
        ),
    )
)
def test_parsing_a_push_is_total_and_every_answer_it_makes_can_be_served(body: Any) -> None:
    try:
        batch = parse_push(loads(dumps(body)), max_changes=100)
    except BatchFormatError as exc:
        json.dumps(exc.errors, ensure_ascii=False).encode("utf-8")
        return
    for item in batch.items:
        if isinstance(item, Change):
            assert not unsafe_values(item.to_wire())
        else:
            json.dumps(item.to_wire(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("text", ["²", "١٢", "𝟙", "1²", "", " 1", "+1", "-1", "1.0", "9" * 19])
def test_a_cursor_is_ascii_digits_only(text: str) -> None:
    if text == "":
        assert decode_cursor(text) == 0
        return
    with pytest.raises(InvalidCursor):
        decode_cursor(text)


@pytest.mark.parametrize(
    "text", ["²²-1-tab", "1-١-tab", "1" * 16 + "-1-tab", "1-" + "1" * 11 + "-tab", "1-1-t\ud800"]
)
def test_a_clock_stamp_is_ascii_digits_within_its_widths(text: str) -> None:
    assert not HLCTimestamp.valid(text)
    with pytest.raises(ClockFormatError):
        HLCTimestamp.decode(text)


@given(st.text())
def test_ascii_digits_is_the_regex_not_isdigit(text: str) -> None:
    assert ascii_digits(text) is (bool(text) and all("0" <= c <= "9" for c in text))


# --- the screen over JSON text (issue 14): a shortcut that must never change an answer ----


def _hooked(text: str) -> Any:
    return json.loads(
        text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
    )


@settings(max_examples=500)
@given(hostile_values)
def test_text_the_screen_passes_holds_no_unsafe_value_and_reads_as_with_the_hooks(
    value: Any,
) -> None:
    text = dumps(value)
    with contextlib.suppress(BodyDecodeError):
        decoded = loads_screened(text)
        if decoded.values_safe:
            assert unsafe_values(decoded.value) == {}
            assert decoded.value == _hooked(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"notes": "a\\u0000b"}',
        '{"notes": "\\ud800"}',
        '{"notes": "\\uDFFF"}',
        '{"notes\\u0000": 1}',
        '{"patients": 9223372036854775808}',
        '{"lat": 1e400}',
        '{"lat": NaN}',
        '{"lat": -Infinity}',
        '["\ud800"]',
    ],
)
def test_the_screen_never_vouches_for_text_holding_an_unsafe_value(text: str) -> None:
    assert not loads_screened(text).values_safe


@settings(max_examples=500)
@given(
    st.recursive(
        st.one_of(st.none(), st.integers(), st.text(alphabet='[]{}"\\,:ab')),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(alphabet='[]{}"\\a'), inner, max_size=3)
        ),
        max_leaves=40,
    ),
    st.integers(1, 8),
)
def test_nesting_level_by_level_equals_the_walk(value: Any, limit: int) -> None:
    assert nests_deeper(value, limit) is _deeper_by_recursion(value, limit)


def _deeper_by_recursion(value: Any, limit: int, depth: int = 0) -> bool:
    """The reference: a container at depth `limit` or below (the root at 0)."""
    if not isinstance(value, dict | list):
        return False
    if depth >= limit:
        return True
    items = value.values() if isinstance(value, dict) else value
    return any(_deeper_by_recursion(item, limit, depth + 1) for item in items)


@settings(max_examples=200)
@given(st.lists(st.dictionaries(hostile_text, hostile_values, max_size=4), max_size=4))
def test_a_screened_push_parses_as_an_unscreened_one(changes: list[Any]) -> None:
    body = {"device_id": "tab", "batch_id": "b1", "changes": changes}
    with contextlib.suppress(BodyDecodeError):
        decoded = loads_screened(dumps(body))
        screened = parse_push(decoded.value, max_changes=100, values_safe=decoded.values_safe)
        walked = parse_push(decoded.value, max_changes=100)
        assert [i.to_wire() for i in screened.items] == [i.to_wire() for i in walked.items]
