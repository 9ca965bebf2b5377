"""The compact pull form (sync/compact.py, issue 14 "the wire"): a device expands every change
back to exactly the full form, for generated flags and for every flag of a demo county."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo_county import generate_county
from rules import evaluate
from rules.ruleset import DEFAULT_PRESET, preset
from rules.scenario import trusted_scenario
from sync.compact import HOLE, PageCompactor, expand_page, period_days
from sync.protocol import F_FLAG, P_FLAGS_SHARED


def text(value: Any) -> str:
    """As the app stores a record (JSON.stringify keeps the key order)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def full_change(flag: dict[str, Any], *, version: int = 1, seq: int = 1) -> dict[str, Any]:
    return {
        "collection": "flags",
        "id": str(flag.get("key")),
        "version": version,
        "deleted": False,
        "seq": seq,
        "data": flag,
        "meta": {"updated_at": "2026-12-03T05:55:29", "updated_by": "rules", "device_id": None,
                 "clock_skew_s": None},
    }  # fmt: skip


def round_trip(changes: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the compact page as it goes over the wire, the page the device expands it to)."""
    compactor = PageCompactor(c["data"] for c in changes if c["collection"] == "flags")
    page: dict[str, Any] = {"changes": [compactor.change(c) for c in changes], "cursor": "9",
                            "has_more": False}  # fmt: skip
    if compactor.shared() is not None:
        page[P_FLAGS_SHARED] = compactor.shared()
    sent = json.loads(text(page))
    return sent, expand_page(json.loads(text(page)))


def same_as_stored(expanded: list[dict[str, Any]], full: list[dict[str, Any]]) -> bool:
    """Equal changes, and each record's data the same JSON text, key order included."""
    return expanded == without_seq_and_meta(full) and [text(c["data"]) for c in expanded] == [
        text(c["data"]) for c in full
    ]


def without_seq_and_meta(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k not in ("seq", "meta")} for c in changes]


def week_flag(week: int, **overrides: Any) -> dict[str, Any]:
    period = f"2024-W{week:02d}"
    first, last = period_days(period) or ("", "")
    flag = {
        "key": f"posting.days_per_week|assignment|A0005|{period}",
        "rule": "posting.days_per_week",
        "status": "violation",
        "subject": {"type": "assignment", "id": "A0005"},
        "period": period,
        "measured": 0,
        "required": 5,
        "evidence": [],
        "explanation": {"zh": f"{period}（派驻 A0005，{first} 至 {last}）：实际0。"},
        "ruleset": {"name": "guangxi", "version": "2023.53"},
        "calendar": "chinese_calendar 1.11.0",
        "doctor": "D0005",
        "scope": f"{first}/{last}",
        "state": "open",
    }
    return flag | overrides


def test_a_week_of_flags_goes_as_its_explanation_values_only_and_comes_back_whole() -> None:
    changes = [full_change(week_flag(w), seq=w) for w in range(1, 9)]
    sent, expanded = round_trip(changes)
    assert same_as_stored(expanded["changes"], changes)
    assert sent["changes"][0] == {"collection": "flags", "id": changes[0]["id"], "version": 1,
                                  F_FLAG: {"explanation": {"zh": [0, 0, 1, 2, 3, "0"]}}}  # fmt: skip
    assert sent[P_FLAGS_SHARED]["templates"] == [
        f"{HOLE}（派驻 {HOLE}，{HOLE} 至 {HOLE}）：实际{HOLE}。"
    ]


def test_a_flag_whose_fields_do_not_follow_its_id_keeps_them_and_still_comes_back() -> None:
    odd = week_flag(3, rule="another.rule", scope="2024-01-01/2024-02-01", key="other")
    lonely = {"key": "x", "state": "open"}  # a body of another shape: sent whole
    changes = [full_change(week_flag(1)), full_change(odd) | {"id": week_flag(3)["key"]}]
    changes.append(full_change(week_flag(2)))
    changes.append({**full_change(lonely), "id": "not|a|flag|id"})
    sent, expanded = round_trip(changes)
    assert same_as_stored(expanded["changes"], changes)
    assert sent["changes"][1][F_FLAG]["rule"] == "another.rule"
    assert "data" in sent["changes"][3] and F_FLAG not in sent["changes"][3]


def test_other_changes_lose_only_seq_meta_and_their_defaults() -> None:
    place = {"collection": "places", "id": "4502", "version": 1, "deleted": False, "seq": 1,
             "data": {"code": "4502", "name": "融溪县"}, "meta": {"updated_by": "import"}}  # fmt: skip
    gone = {"collection": "visits", "id": "v1", "version": 3, "deleted": True, "seq": 2,
            "data": None, "meta": {}}  # fmt: skip
    sent, expanded = round_trip([place, gone])
    assert sent["changes"] == [
        {"collection": "places", "id": "4502", "version": 1, "data": place["data"]},
        {"collection": "visits", "id": "v1", "version": 3, "deleted": True},
    ]
    assert P_FLAGS_SHARED not in sent
    assert expanded["changes"] == without_seq_and_meta([place, gone])


_label = st.text(st.sampled_from("0123456789-W/Aaz.|—\x01 ，："), max_size=24)
_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _label)


@st.composite
def flags(draw: st.DrawFn) -> dict[str, Any]:
    """Flags near the shape the rules write, with any field free to disagree with the id."""
    week = draw(st.integers(1, 52))
    flag = week_flag(week)
    for name in ("rule", "status", "period", "scope", "doctor", "state", "calendar", "key"):
        if draw(st.booleans()):
            flag[name] = draw(st.one_of(_label, st.none()))
    for name in ("measured", "required"):
        flag[name] = draw(_value)
    flag["evidence"] = draw(st.lists(_label, max_size=3))
    langs = draw(st.lists(st.sampled_from(["zh", "en"]), unique=True, max_size=2))
    flag["explanation"] = {lang: draw(st.text(max_size=60)) + draw(_label) for lang in langs}
    if draw(st.booleans()):
        del flag[draw(st.sampled_from(sorted(flag)))]
    return flag


@given(st.lists(flags(), max_size=6))
@settings(max_examples=300, deadline=None)
def test_every_generated_page_of_flags_expands_to_exactly_the_full_form(
    bodies: list[dict[str, Any]],
) -> None:
    changes = [
        {**full_change(flag, seq=n), "id": f"{flag.get('key')}" if n % 2 else "r|assignment|A1|2024-W05"}
        for n, flag in enumerate(bodies)
    ]  # fmt: skip
    _, expanded = round_trip(changes)
    assert same_as_stored(expanded["changes"], changes)


@pytest.fixture(scope="module")
def county_flags() -> list[dict[str, Any]]:
    county = generate_county(townships=2, villages=6, doctors=5, weeks=10)
    scenario = trusted_scenario(county)
    as_of = max(date.fromisoformat(v["check_in"][:10]) for v in county["visits"])
    found = evaluate(scenario, as_of=as_of, ruleset=preset(DEFAULT_PRESET))
    assert found, "the demo county breaks rules on purpose"
    return [f.to_dict() | {"state": "open"} for f in found]


@pytest.mark.parametrize("lang", [None, "zh", "en"])
def test_every_flag_of_the_demo_county_comes_back_exactly_and_the_page_is_smaller(
    county_flags: list[dict[str, Any]], lang: str | None
) -> None:
    bodies = [
        f if lang is None else f | {"explanation": {lang: f["explanation"][lang]}}
        for f in county_flags
    ]
    changes = [full_change(f, seq=n) for n, f in enumerate(bodies)]
    sent, expanded = round_trip(changes)
    assert same_as_stored(expanded["changes"], changes)
    assert sum(F_FLAG in c for c in sent["changes"]) == len(changes), "every rule's flag compacts"
    assert len(text(sent)) < len(text({"changes": changes})) * 2 / 3
