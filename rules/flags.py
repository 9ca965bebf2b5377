"""A flag: one rule judged against one subject in one period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rules.periods import DateRange, overlap, range_label

VIOLATION = "violation"
AT_RISK = "at_risk"
SUBJECT_TYPES = ("assignment", "doctor", "place", "visit")


@dataclass(frozen=True, slots=True)
class Flag:
    rule: str
    status: str  # violation | at_risk
    subject_type: str  # assignment | doctor | place | visit
    subject_id: str
    period: str  # 2026-W11, 2026-03, 2026, 2026-03-05 or 2026-03-02/2026-06-30
    measured: Any
    required: Any
    evidence: tuple[str, ...]
    explanation_zh: str
    explanation_en: str
    ruleset: tuple[str, str]  # name, version
    calendar: str
    # The doctor the flag concerns (None for place-level flags, which every scoped
    # evaluation recomputes) and the dates whose data it depends on: incremental
    # re-evaluation replaces the stored flags whose doctor and scope match.
    doctor: str | None = None
    scope: DateRange = field(default=(date.min, date.max))

    @property
    def key(self) -> str:
        """Stable identity across re-evaluations: rule|subject type|subject id|period."""
        return f"{self.rule}|{self.subject_type}|{self.subject_id}|{self.period}"

    @property
    def subject(self) -> dict[str, str]:
        return {"type": self.subject_type, "id": self.subject_id}

    def in_scope(self, doctors: Iterable[str] | None, period: DateRange | None) -> bool:
        """Whether a scoped evaluation for (doctors, period) yields this flag."""
        if doctors is not None and self.doctor is not None and self.doctor not in set(doctors):
            return False
        return period is None or overlap(self.scope, period) is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rule": self.rule,
            "status": self.status,
            "subject": self.subject,
            "period": self.period,
            "measured": self.measured,
            "required": self.required,
            "evidence": list(self.evidence),
            "explanation": {"zh": self.explanation_zh, "en": self.explanation_en},
            "ruleset": {"name": self.ruleset[0], "version": self.ruleset[1]},
            "calendar": self.calendar,
            "doctor": self.doctor,
            "scope": range_label(*self.scope),
        }
