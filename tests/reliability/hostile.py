"""Hostile values for the property tests of issue 13, and a JSON writer that can send them.

`json.dumps` cannot write an integer literal of thousands of digits (Python's int-to-text
limit) and writes lone surrogates only as escapes; `Raw` carries any literal text into a
body as it is, so a test can send what a careless or hostile integrator could.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st


class Raw(str):
    """A JSON literal written into the body exactly as it is (`1e400`, `NaN`, 5,000 digits)."""


def dumps(value: Any) -> str:
    """JSON text of `value`, with `Raw` literals as they are and lone surrogates as the
    `\\ud800` escapes a JSON text can carry."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)  # ensure_ascii: surrogates escaped; NaN and Infinity as such


SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)

# Text from the whole Unicode range, surrogates and NUL made frequent (hypothesis draws a
# surrogate about once in 3,000 characters otherwise).
hostile_text = st.lists(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),
        SURROGATES,
        st.sampled_from(["\x00", "²", "٣", "\ufeff", "\u202e", "𝟘", "'", '"', "\\", "%"]),
    ),
    max_size=12,
).map("".join)

extreme_dates = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+08:00",
            "0001-01-01T00:00:00-12:00",
            "9999-12-31T23:59:59-12:00",
            "9999-12-31T23:59:59+14:00",
            "1999-12-31T23:00:00+08:00",
            "2100-01-01T08:00:00+08:00",
            "0001-01-01",
            "9999-12-31",
            "2026-02-30",
            "2026-W53",
            "０２０２６-03-01",
            "2026-03-01T08:00:00+99:00",
        ]
    ),
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
)

huge_numbers = st.one_of(
    st.integers(-(2**80), 2**80),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**19]),
    st.integers(20, 6000).map(lambda n: Raw("9" * n)),
    st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("NaN"), Raw("Infinity"), Raw("-0")]),
    st.floats(),
)

hostile_scalars = st.one_of(
    hostile_text,
    huge_numbers,
    extreme_dates,
    st.booleans(),
    st.none(),
    st.sampled_from(["²", "١٢", "𝟙𝟚", "12²", " 12", "+12", "0x10", "1_000"]),
)

hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)

# Strings for query parameters and path segments: digits that are not ASCII, huge numbers,
# extreme dates and weeks, text from the whole range.
hostile_params = st.one_of(
    hostile_text,
    st.sampled_from(
        [
            "²",
            "١٢",
            "𝟙",
            "-1",
            "0",
            "99999999999999999999999",
            "9" * 5000,
            "1e3",
            "0001-W01",
            "9999-W52",
            "2026-W99",
            "0001-01",
            "9999-12",
            "2026-13",
            "0001-01-01",
            "9999-12-31",
            "²⁰²⁶-03",
            "2026-03",
            "2026-W11",
        ]
    ),
    huge_numbers.map(str),
)


def deep(levels: int, *, kind: str = "array") -> str:
    """A JSON text nesting `levels` deep."""
    if kind == "array":
        return "[" * levels + "]" * levels
    return '{"a":' * levels + "1" + "}" * levels
