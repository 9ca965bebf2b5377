"""The plain data the rules read: places, doctors, assignments, visits, leave, trainings.

Frozen dataclasses built by `rules.scenario.load_scenario`; nothing here knows about JSON,
HTTP or a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

PLACE_LEVELS = ("county", "township", "village")
QUALIFICATIONS = ("physician", "assistant_physician", "village_doctor", "other")
# 执业(助理)医师: the qualifications the staffing share counts (RULES.md, staffing.qualified_share).
QUALIFIED = frozenset({"physician", "assistant_physician"})
# The three duty kinds (驻 posting, 巡 patrol, 坐诊 sit-in): the one definition every package uses.
POSTING, PATROL, SITIN = "posting", "patrol", "sitin"
DUTY_KINDS = (POSTING, PATROL, SITIN)
SLOTS = ("am", "pm")
LEAVE_STATUSES = ("pending", "approved", "refused")


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    name: str
    level: str
    parent: str | None = None
    population: int | None = None
    has_clinic: bool = False
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Doctor:
    id: str
    name: str
    qualification: str
    home: str

    @property
    def qualified(self) -> bool:
        return self.qualification in QUALIFIED


@dataclass(frozen=True, slots=True)
class Slot:
    weekday: int  # ISO: 1 = Monday … 7 = Sunday
    slot: str  # am | pm


@dataclass(frozen=True, slots=True)
class Assignment:
    id: str
    doctor: str
    kind: str
    places: tuple[str, ...]
    start: date
    end: date | None = None  # inclusive last day of duty; None = open-ended
    slots: tuple[Slot, ...] = ()

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Visit:
    id: str
    doctor: str
    place: str
    kind: str
    check_in: datetime  # timezone-aware
    check_out: datetime  # timezone-aware, >= check_in
    patients: int = 0
    assignment: str | None = None
    lat: float | None = None
    lon: float | None = None
    recorded_at: datetime | None = None
    # Derived once: the local date of the check-in (at its own UTC offset), hours on site.
    day: date = field(init=False, repr=False, compare=False)
    hours: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "day", self.check_in.date())
        object.__setattr__(self, "hours", (self.check_out - self.check_in).total_seconds() / 3600.0)


@dataclass(frozen=True, slots=True)
class Leave:
    doctor: str
    start: date
    end: date
    status: str
    id: str | None = None
    reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclass(frozen=True, slots=True)
class Training:
    doctor: str
    start: date
    end: date
    title: str = ""
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    places: tuple[Place, ...] = ()
    doctors: tuple[Doctor, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    visits: tuple[Visit, ...] = ()
    leave: tuple[Leave, ...] = ()
    trainings: tuple[Training, ...] = field(default_factory=tuple)
