"""Integrity rules on visit records (RULES.md: visit.*): overlap, off_site,
implausible_patients, late_entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rules.context import EvaluationContext
from rules.explain import plain_number
from rules.flags import VIOLATION, Flag
from rules.geo import haversine_km
from rules.model import Visit


def rule_visits(ctx: EvaluationContext, doctor: str) -> Iterator[Flag]:
    index = ctx.index
    active: list[Visit] = []
    first, last = ctx.period or (date.min, date.max)
    for v in index.visits_of.get(doctor, ()):
        clash = [u for u in active if u.check_out > v.check_in and u.place != v.place]
        active = [u for u in active if u.check_out > v.check_in] + [v]
        # Every flag below has a scope ending on v.day; only overlap's starts earlier.
        if v.day < first or (v.day > last and not clash):
            continue
        version, _ = ctx.version(v.day)
        one_day = (v.day, v.day)
        if clash and version.enabled("visit.overlap"):
            names = ", ".join(
                f"{u.id} ({u.place} {u.check_in.isoformat()}–{u.check_out.isoformat()})"
                for u in clash
            )
            yield ctx.flag(
                "visit.overlap", VIOLATION, ("visit", v.id), v.day.isoformat(), len(clash), 0,
                [u.id for u in clash] + [v.id],
                f"医生 {doctor} 的记录 {v.id}（{v.place}，{v.check_in.isoformat()} 起）与其他地点的记录时间重叠：{names}。",
                f"doctor {doctor}'s visit {v.id} at {v.place} from {v.check_in.isoformat()} overlaps visits at other places: {names}.",
                version, doctor, (min(u.day for u in clash), v.day),
            )  # fmt: skip
        place = index.places.get(v.place)
        rule = "visit.off_site"
        if (
            version.enabled(rule)
            and place is not None
            and None not in (v.lat, v.lon, place.lat, place.lon)
        ):
            km = haversine_km(v.lat, v.lon, place.lat, place.lon)  # type: ignore[arg-type]
            limit = float(version.param(rule, "max_distance_km"))
            if km > limit + 1e-9:
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), round(km, 3), limit, (v.id,),
                    f"记录 {v.id} 的定位距 {v.place} 登记位置{km:.3f}公里，超过{limit}公里。",
                    f"visit {v.id} was recorded {km:.3f} km from {v.place}'s registered position, more than {limit} km.",
                    version, doctor, one_day,
                )  # fmt: skip
        rule = "visit.implausible_patients"
        if version.enabled(rule) and v.patients > 0:
            limit = float(version.param(rule, "max_patients_per_hour"))
            hours = v.hours
            if hours <= 0 or v.patients / hours > limit + 1e-9:
                rate = round(v.patients / hours, 2) if hours > 0 else None
                shown = f"{rate}" if rate is not None else "∞"
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), rate, limit, (v.id,),
                    f"记录 {v.id}：{v.patients}名患者，在岗{hours:.2f}小时，每小时{shown}名，超过{plain_number(limit)}名。",
                    f"visit {v.id}: {v.patients} patients in {hours:.2f} h on site = {shown} an hour, over {plain_number(limit)}.",
                    version, doctor, one_day,
                )  # fmt: skip
        rule = "visit.late_entry"
        if version.enabled(rule) and v.recorded_at is not None:
            delay = (v.recorded_at - v.check_out).total_seconds() / 86400
            limit = float(version.param(rule, "max_entry_delay_days"))
            if delay > limit + 1e-9:
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), round(delay, 2), limit, (v.id,),
                    f"记录 {v.id} 于{v.recorded_at.isoformat()}录入，距诊疗结束{delay:.2f}天，超过{plain_number(limit)}天。",
                    f"visit {v.id} was entered at {v.recorded_at.isoformat()}, {delay:.2f} days after it ended, over {plain_number(limit)} days.",
                    version, doctor, one_day,
                )  # fmt: skip
