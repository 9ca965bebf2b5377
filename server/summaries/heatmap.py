"""The duty heatmap: a doctor's sessions, hours on site and patients per date over recent
ISO weeks, each week marked approved or not; the data of the heatmap chart."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.periods import week_label, week_start
from server.actor import TOWNSHIP_REVIEWER, Actor
from server.errors import InvalidInput, NotFound
from server.flags import today_in_china
from server.models import Doctor, OrgUnit, Visit, WeekReview
from server.summaries.county import (
    APPROVED,
    check_actor,
)
from server.summaries.periods import (
    MAX_HEATMAP_WEEKS,
)


def duty_heatmap(
    session: Session,
    actor: Actor,
    doctor_id: str,
    weeks: int = 12,
    *,
    as_of: date | None = None,
) -> dict[str, Any]:
    """A doctor's visit records (sessions), hours on site and patients per date, for the
    `weeks` ISO weeks ending with the week of `as_of`, oldest first; only visits at places
    in the caller's scope. Each week says whether a reviewer approved it."""
    check_actor(actor)
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_HEATMAP_WEEKS:
        raise InvalidInput(
            f"weeks must be from 1 to {MAX_HEATMAP_WEEKS}, not {weeks!r}",
            {"weeks": [f"must be from 1 to {MAX_HEATMAP_WEEKS}"]},
        )
    as_of = as_of or today_in_china()
    doctor = session.get(Doctor, doctor_id) if isinstance(doctor_id, str) and doctor_id else None
    if doctor is None or not actor.may_see(doctor.id, doctor.township_code, doctor.county_code):
        raise NotFound(f"no doctor {doctor_id!r} in your scope")
    last_monday = week_start(as_of)
    first_monday = last_monday - timedelta(days=7 * (weeks - 1))
    places = select(OrgUnit.code).where(OrgUnit.county_code == actor.county_code)
    if actor.role == TOWNSHIP_REVIEWER:
        places = places.where(OrgUnit.township_code == actor.township_code)
    visits = session.scalars(
        select(Visit).where(
            Visit.doctor_id == doctor.id,
            Visit.deleted.is_(False),
            Visit.local_date >= first_monday,
            Visit.local_date <= min(as_of, last_monday + timedelta(days=6)),
            Visit.place_code.in_(places),
        )
    )
    by_day: dict[date, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for v in visits:
        cell = by_day[v.local_date]
        cell[0] += 1
        cell[1] += (v.check_out - v.check_in).total_seconds() / 3600.0
        cell[2] += v.patients
    approved = {
        week
        for (week,) in session.execute(
            select(WeekReview.week).where(
                WeekReview.doctor_id == doctor.id, WeekReview.state == APPROVED
            )
        )
    }
    rows = []
    for n in range(weeks):
        monday = first_monday + timedelta(days=7 * n)
        label = week_label(monday)
        days = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            sessions, hours, patients = by_day.get(day, (0, 0.0, 0))
            days.append(
                {
                    "date": day.isoformat(),
                    "weekday": offset + 1,
                    "sessions": int(sessions),
                    "hours": round(hours, 2),
                    "patients": int(patients),
                    "future": day > as_of,
                }
            )
        rows.append(
            {
                "week": label,
                "start": monday.isoformat(),
                "approved": label in approved,
                "days": days,
            }
        )
    return {
        "doctor": {"id": doctor.id, "name": doctor.name, "township": doctor.township_code},
        "figures_as_of": as_of.isoformat(),
        "weeks": rows,
        "max_sessions": max((int(cell[0]) for cell in by_day.values()), default=0),
    }
