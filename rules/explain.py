"""Shared pieces of the flags' bilingual explanations: the duty kinds' Chinese names and
how dates and numbers are written in the text."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from rules.model import PATROL, POSTING, SITIN

KIND_ZH = {POSTING: "派驻", PATROL: "巡诊", SITIN: "坐诊"}


def format_days(values: Iterable[date]) -> str:
    """Dates as ISO strings, comma-separated; an em dash when there are none."""
    listed = [d.isoformat() for d in values]
    return ", ".join(listed) if listed else "—"


def plain_number(value: float) -> float | int:
    """A parameter as a person writes it: 4.0 → 4, 2.3456 → 2.35."""
    return int(value) if float(value).is_integer() else round(value, 2)
