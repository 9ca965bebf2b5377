"""The explanations' shared wording (rules/explain.py)."""

from datetime import date

from rules.explain import KIND_ZH, format_days, plain_number
from rules.model import DUTY_KINDS


def test_every_duty_kind_has_its_chinese_name():
    assert [KIND_ZH[kind] for kind in DUTY_KINDS] == ["派驻", "巡诊", "坐诊"]


def test_dates_are_listed_in_iso_form_and_none_is_a_dash():
    assert format_days([date(2026, 10, 1), date(2026, 10, 2)]) == "2026-10-01, 2026-10-02"
    assert format_days([]) == "—"


def test_a_whole_number_is_shown_without_decimals_and_others_with_two():
    assert (plain_number(4.0), plain_number(2.3456), plain_number(7)) == (4, 2.35, 7)
    assert isinstance(plain_number(4.0), int)
