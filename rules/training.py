"""training.sessions_per_year and training.days_per_year (RULES.md, sichuan (五)): each
village doctor, each calendar year. A session is a training record starting in the year; a
training day is a workday inside a training record's dates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rules.context import EvaluationContext
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import Doctor


def rule_training(ctx: EvaluationContext, doctors: list[Doctor]) -> Iterator[Flag]:
    index = ctx.index
    all_villages = frozenset(p.code for p in index.places.values() if p.level == "village")
    for doctor in doctors:
        for year in range(index.first_day.year, ctx.as_of.year + 1):
            jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
            if not ctx.touches(jan1, dec31):
                continue
            # A village doctor that year: home in a village, or a posting or patrol to one
            # overlapping the year.
            if doctor.id not in index.village_doctors(set(all_villages), jan1, dec31):
                continue
            version, cal = ctx.version(jan1)
            trainings = [t for t in index.trainings_of.get(doctor.id, ()) if t.start.year == year]
            training_days = index.training_days.get(doctor.id, set())
            workdays = index.workdays_of_year(cal, year)
            over = ctx.ended(dec31)
            remaining = [d for d in workdays if ctx.to_come(d) and d not in training_days]
            counted_days = [d for d in workdays if d in training_days and d <= ctx.as_of]
            for rule, measured, minimum, what_en, what_zh in (
                ("training.sessions_per_year", len(trainings), "min_sessions", "training sessions", "次培训"),
                ("training.days_per_year", len(counted_days), "min_days", "training workdays", "个培训工作日"),
            ):  # fmt: skip
                if not version.enabled(rule):
                    continue
                need = min(int(version.param(rule, minimum)), len(workdays))
                if over and measured >= need:
                    continue
                if not over and measured + len(remaining) >= need:
                    continue
                status = VIOLATION if over else AT_RISK
                en = (
                    f"village doctor {doctor.id}, {year}: {measured} {what_en}; required {need} "
                    f"({len(workdays)} workdays in the year, calendar {cal.sources(jan1, dec31)})."
                )
                zh = f"乡村医生 {doctor.id}，{year}年：{measured}{what_zh}，要求不少于{need}。"
                if not over:
                    since = "from" if ctx.today_open else "after"
                    en += f" Only {len(remaining)} workday(s) remain {since} {ctx.as_of}."
                    zh += f" {ctx.as_of}{'起' if ctx.today_open else '之后'}仅剩{len(remaining)}个工作日。"
                yield ctx.flag(
                    rule, status, ("doctor", doctor.id), str(year), measured, need,
                    (), zh, en, version, doctor.id, (jan1, dec31),
                )  # fmt: skip
