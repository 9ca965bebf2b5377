"""EvaluationContext: what every rule family reads during one evaluation: the index, the
rule set with the version in force on a date, the evaluation date and the scope (doctors,
period) of a scoped evaluation; and `flag`, the one way a rule builds a Flag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rules.flags import Flag
from rules.index import Index
from rules.periods import DateRange, label_range, overlap
from rules.ruleset import RuleSet, RuleSetVersion
from rules.workdays import WorkCalendar


@dataclass
class EvaluationContext:
    """One evaluation's shared state; `doctors`/`period` None mean unscoped."""

    index: Index
    ruleset: RuleSet
    as_of: date
    doctors: set[str] | None
    period: DateRange | None
    # A live evaluation (the server judging as of today, issue 14): the evaluation date is
    # not over yet, so what is still possible today counts as still to come.
    today_open: bool = False

    def ended(self, day: date) -> bool:
        """Whether a period that ends on `day` is over as of the evaluation."""
        return day < self.as_of or (day == self.as_of and not self.today_open)

    def to_come(self, day: date) -> bool:
        """Whether `day` is still (partly) ahead: after the evaluation date, or the
        evaluation date itself in a live evaluation."""
        return day > self.as_of or (day == self.as_of and self.today_open)

    def doctor_in_scope(self, doctor: str) -> bool:
        return self.doctors is None or doctor in self.doctors

    def touches(self, first: date, last: date) -> bool:
        return self.period is None or overlap((first, last), self.period) is not None

    _versions: dict[date, tuple[RuleSetVersion, WorkCalendar]] = field(default_factory=dict)

    def version(self, day: date) -> tuple[RuleSetVersion, WorkCalendar]:
        """The rule set version in force on `day`, and its calendar."""
        found = self._versions.get(day)
        if found is None:
            version = self.ruleset.version_at(day)
            found = self._versions[day] = (version, self.ruleset.calendar(version))
        return found

    def flag(
        self,
        rule: str,
        status: str,
        subject: tuple[str, str],
        period: str,
        measured: Any,
        required: Any,
        evidence: Iterable[str],
        zh: str,
        en: str,
        version: RuleSetVersion,
        doctor: str | None,
        scope: DateRange,
    ) -> Flag:
        first, last = label_range(period)
        calendar = self.ruleset.calendar(version).sources(first, min(last, date(9999, 1, 1)))
        return Flag(
            rule=rule,
            status=status,
            subject_type=subject[0],
            subject_id=subject[1],
            period=period,
            measured=measured,
            required=required,
            evidence=tuple(dict.fromkeys(evidence)),
            explanation_zh=zh,
            explanation_en=en,
            ruleset=(self.ruleset.name, version.version),
            calendar=calendar,
            doctor=doctor,
            scope=scope,
        )
