"""The county a summary is about, loaded once per call: its rules scenario (kept in this
process while the sync counter stays put), the places and townships in the caller's
scope, and the doctor-weeks a reviewer approved."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules import Index, RuleSet, Scenario
from rules.model import Place
from rules.periods import week_label, week_start
from rules.scenario import trusted_scenario
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER, Actor
from server.errors import Forbidden, NotFound
from server.flags import scenario_for
from server.models import Doctor, OrgUnit, SyncCounter, WeekReview

APPROVED = "approved"  # WeekReview.state of an approved doctor-week (server/review/workflow.py)


# --- the county, loaded once per call -----------------------------------------------


@dataclass
class County:
    """The caller's county as the rules see it, and the part of it in the caller's scope."""

    code: str
    name: str
    data: Scenario
    places: dict[str, Place]
    township_of: dict[str, str | None]  # place code → its township (itself for a township)
    townships: list[Place]  # the townships in scope, by code
    whole_county: bool  # the scope is the whole county (county admin, no township asked)
    approved_weeks: set[tuple[str, str]]  # (doctor, ISO week) a reviewer approved
    index: Index | None = None
    _approved_data: Scenario | None = field(default=None, repr=False)

    @property
    def selected(self) -> set[str]:
        return {t.code for t in self.townships}

    def assignment_township(self, places: Sequence[str]) -> str | None:
        # An assignment serves one township: that of its first place (a patrol route runs
        # through the villages of one township; a sit-in is at the township hospital).
        return self.township_of.get(places[0]) if places else None

    def approved_data(self) -> Scenario:
        """The scenario restricted to the visits of approved doctor-weeks."""
        if self._approved_data is None:
            weeks: dict[date, str] = {}
            for v in self.data.visits:
                if v.day not in weeks:
                    weeks[v.day] = week_label(week_start(v.day))
            visits = tuple(
                v for v in self.data.visits if (v.doctor, weeks[v.day]) in self.approved_weeks
            )
            self._approved_data = replace(self.data, visits=visits)
        return self._approved_data

    def villages_of(self, township: str) -> list[Place]:
        return sorted(
            (
                p
                for p in self.places.values()
                if p.level == "village" and self.township_of.get(p.code) == township
            ),
            key=lambda p: p.code,
        )


_SCENARIOS: OrderedDict[tuple[int, str], tuple[Any, int, Scenario]] = OrderedDict()
_SCENARIOS_KEPT = 4
_scenarios_lock = threading.Lock()


def county_scenario(session: Session, county: str) -> Scenario:
    """The county's rules scenario (`server.flags.scenario_for`), kept in this process while the
    sync counter stays put. Every write of a place, doctor, assignment, visit, leave or
    training record takes the next sequence number (server/records/sql_store.py), so an unchanged counter
    means unchanged data. The counter is read first: the data read after it is at least as
    new. Loading the demo county takes most of a summary's time (docs/summaries.md)."""
    engine = session.get_bind()
    counter = session.scalar(select(SyncCounter.value).where(SyncCounter.id == 1)) or 0
    key = (id(engine), county)
    with _scenarios_lock:
        kept = _SCENARIOS.get(key)
        if kept is not None and kept[0] is engine and kept[1] == counter:
            _SCENARIOS.move_to_end(key)
            return kept[2]
    data = trusted_scenario(scenario_for(session, {county}, None))  # validated when stored
    with _scenarios_lock:
        _SCENARIOS[key] = (engine, counter, data)  # the engine itself: its id is not reused
        _SCENARIOS.move_to_end(key)
        while len(_SCENARIOS) > _SCENARIOS_KEPT:
            _SCENARIOS.popitem(last=False)
    return data


def check_actor(actor: Actor) -> str:
    if actor.role not in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        raise Forbidden("summaries are for township reviewers and county admins")
    if actor.county_code is None:
        raise NotFound("this account belongs to no county")
    return actor.county_code


def load_county(session: Session, actor: Actor, township: str | None, as_of: date) -> County:
    county = check_actor(actor)
    unit = session.get(OrgUnit, county)
    data = county_scenario(session, county)
    places = {p.code: p for p in data.places}

    def township_of(code: str) -> str | None:
        seen: set[str] = set()
        place = places.get(code)
        while place is not None and place.code not in seen:
            if place.level == "township":
                return place.code
            seen.add(place.code)
            place = places.get(place.parent) if place.parent else None
        return None

    townships = sorted((p for p in places.values() if p.level == "township"), key=lambda p: p.code)
    if actor.role == TOWNSHIP_REVIEWER:
        townships = [t for t in townships if t.code == actor.township_code]
    if township is not None:
        townships = [t for t in townships if t.code == township]
        if not townships:
            raise NotFound(f"no township {township!r} in your scope")
    approved = {
        (doctor, week)
        for doctor, week in session.execute(
            select(WeekReview.doctor_id, WeekReview.week)
            .join(Doctor, Doctor.id == WeekReview.doctor_id)
            .where(Doctor.county_code == county, WeekReview.state == APPROVED)
        )
    }
    return County(
        code=county,
        name=unit.name if unit is not None else county,
        data=data,
        places=places,
        township_of={code: township_of(code) for code in places},
        townships=townships,
        whole_county=actor.role == COUNTY_ADMIN and township is None,
        approved_weeks=approved,
    )


def ruleset_ref(ruleset: RuleSet, first: date, last: date) -> dict[str, str]:
    """The rule set and the version(s) in force during [first, last]."""
    versions = [ruleset.version_at(first).version]
    for version in ruleset.versions:
        if first < version.effective <= last and version.version not in versions:
            versions.append(version.version)
    return {"name": ruleset.name, "version": ", ".join(versions)}
