"""The rules about places rather than people (RULES.md): coverage.village per village and
ISO week; staffing.doctors_per_1000 per township and staffing.qualified_share per county,
per calendar month."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from datetime import date, timedelta

from rules.context import EvaluationContext
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import PATROL, POSTING
from rules.periods import month_end, month_label, months, overlap, week_label, weeks

# coverage.village (RULES.md; national (四), shanxi 3): judged at the end of each ISO week.
# A village needs coverage when it has no clinic or fewer than small_village_population
# residents; it is covered when a posting or patrol assignment to it overlaps the week and
# some visit there falls in the coverage_window_days ending on the week's Sunday.


def rule_coverage(ctx: EvaluationContext) -> Iterator[Flag]:
    rule = "coverage.village"
    index = ctx.index
    villages = [p for p in index.places.values() if p.level == "village"]
    for monday in weeks(index.first_day, ctx.as_of):
        sunday = monday + timedelta(days=6)
        version, _ = ctx.version(monday)
        if not version.enabled(rule):
            continue
        window = int(version.param(rule, "coverage_window_days"))
        small = version.param(rule, "small_village_population")
        scope = (min(monday, sunday - timedelta(days=window - 1)), sunday)
        if not ctx.touches(*scope):
            continue
        over = ctx.ended(sunday)
        horizon = min(sunday, ctx.as_of)
        for village in villages:
            small_village = (
                village.population is not None
                and small is not None
                and (village.population < small)
            )
            if village.has_clinic and not small_village:
                continue
            duty = [
                a for a in index.assignments_at.get(village.code, ())
                if a.kind in (POSTING, PATROL) and overlap((a.start, a.end or date.max), (monday, sunday))
            ]  # fmt: skip
            visit_days = index.visit_days_at.get(village.code, [])
            pos = bisect_right(visit_days, horizon)
            last_visit = visit_days[pos - 1] if pos else None
            since = (horizon - last_visit).days if last_visit else None
            visited = last_visit is not None and (sunday - last_visit).days < window
            if over:
                if duty and visited:
                    continue
                status = VIOLATION
            else:
                later = [a for a in duty if (a.end or date.max) > ctx.as_of]
                if duty and (visited or later):
                    continue
                status = AT_RISK
            why_en, why_zh = [], []
            if not duty:
                why_en.append("no posting or patrol assignment overlaps the week")
                why_zh.append("本周无派驻或巡诊安排")
            if not visited:
                seen = f"last visit {last_visit}" if last_visit else "never visited"
                why_en.append(f"no visit in the {window} days ending {sunday} ({seen})")
                why_zh.append(
                    f"截至{sunday}的{window}天内无诊疗记录（最近一次：{last_visit or '无'}）"
                )
            en = (
                f"village {village.code} {village.name}, {week_label(monday)}: "
                + "; ".join(why_en)
                + "."
            )
            zh = (
                f"行政村 {village.code} {village.name}，{week_label(monday)}："
                + "；".join(why_zh)
                + "。"
            )
            evidence = [index.visit_ids_at[village.code][pos - 1]] if pos else []
            yield ctx.flag(
                rule, status, ("place", village.code), week_label(monday), since, window,
                evidence, zh, en, version, None, scope,
            )  # fmt: skip


# staffing.doctors_per_1000 (per township) and staffing.qualified_share (per county), per
# calendar month (RULES.md; shanxi 3, laiyang (九), national (八)). Village doctors: doctors
# whose home is a village, or who hold a posting or patrol assignment to a village during
# the month. A month not yet over is at risk when it fails on the data so far.


def rule_staffing(ctx: EvaluationContext) -> Iterator[Flag]:
    index = ctx.index
    townships = [p for p in index.places.values() if p.level == "township"]
    counties = [p for p in index.places.values() if p.level == "county"]
    for first in months(index.first_day, ctx.as_of):
        last = month_end(first)
        if not ctx.touches(first, last):
            continue
        version, _ = ctx.version(first)
        over = ctx.ended(last)
        status = VIOLATION if over else AT_RISK
        label = month_label(first)
        rule = "staffing.doctors_per_1000"
        if version.enabled(rule):
            low, high = version.param(rule, "min_per_1000"), version.param(rule, "max_per_1000")
            for township in townships:
                villages = index.villages_under(township.code)
                population = sum(index.places[v].population or 0 for v in villages)
                if population <= 0:
                    continue
                serving = index.village_doctors(villages, first, min(last, ctx.as_of))
                per_1000 = len(serving) * 1000 / population
                if per_1000 < low - 1e-9:
                    need, word_en, word_zh = low, "below", "低于"
                elif high is not None and per_1000 > high + 1e-9:
                    need, word_en, word_zh = high, "above", "高于"
                else:
                    continue
                en = (
                    f"township {township.code} {township.name}, {label}: {len(serving)} village "
                    f"doctor(s) for {population} residents = {per_1000:.3f} per 1,000, {word_en} {need}."
                )
                zh = (
                    f"乡镇 {township.code} {township.name}，{label}：乡村医生{len(serving)}名，服务人口"
                    f"{population}人，每千人{per_1000:.3f}名，{word_zh}{need}。"
                )
                yield ctx.flag(
                    rule, status, ("place", township.code), label, round(per_1000, 3), need,
                    (), zh, en, version, None, (first, last),
                )  # fmt: skip
        rule = "staffing.qualified_share"
        if version.enabled(rule):
            target = float(version.param(rule, "min_share"))
            for county in counties:
                serving = index.village_doctors(
                    index.villages_under(county.code), first, min(last, ctx.as_of)
                )
                if not serving:
                    continue
                qualified = [d for d in serving if index.doctors[d].qualified]
                share = len(qualified) / len(serving)
                if share >= target - 1e-9:
                    continue
                en = (
                    f"county {county.code} {county.name}, {label}: {len(qualified)} of "
                    f"{len(serving)} village doctors hold a 执业(助理)医师 qualification, share "
                    f"{share:.3f} < {target}."
                )
                zh = (
                    f"县 {county.code} {county.name}，{label}：{len(serving)}名乡村医生中具备执业（助理）"
                    f"医师资格{len(qualified)}名，占比{share:.3f}，低于{target}。"
                )
                yield ctx.flag(
                    rule, status, ("place", county.code), label, round(share, 3), target,
                    (), zh, en, version, None, (first, last),
                )  # fmt: skip
