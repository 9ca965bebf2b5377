"""The demo county generator: places, doctors, duty assignments and months of field data to go with them.

`generate_county()` builds a scenario dict in the format `zhuxun import` reads and the rules
engine checks (docs/scenario-format.md; the rules are in RULES.md). `zhuxun demo`, the tests
and the benchmarks all use it, so it is deterministic for a seed (one `random.Random(seed)`;
never the global generator, never the clock) and it scales from a handful of records to a few
hundred thousand visits in seconds.

The county is modelled on a Guangxi one: towns and townships (乡/镇) whose hospitals send
doctors out, villages with and without a clinic (村卫生室), and the three kinds of duty:
postings (派驻) to a village clinic, patrols (巡诊) of small villages in declared slots, and
sit-ins (坐诊) of county-hospital doctors at a township hospital. Field work follows the
official calendar (holidays and 调休 make-up workdays), leave and training, and has the gaps
real work has (a missed day, a session moved to another day).

When `breaches` is on, a few rule breaches are planted on purpose and listed in
`meta["breaches"]`, each under the id of the rule that should flag it (RULES.md). The list
is what was planted, not every flag the rules engine will raise: a random missed day or a
pending leave can raise a few more, as in a real county. A breach the county is too small
for (say, no patrol doctor to plant it on) is left out of the list.

Pure Python: no Flask, no database.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chinese_calendar import get_holiday_detail, is_workday

from rules.geo import EARTH_RADIUS_KM, haversine_km
from rules.model import DUTY_KINDS, PATROL, PLACE_LEVELS, POSTING, QUALIFICATIONS, SITIN
from rules.periods import CHINA_TZ, add_months, week_label

Scenario = dict[str, Any]
JSON = dict[str, Any]

# China Standard Time (rules.periods.CHINA_TZ) as "+08:00": every time in a scenario carries it.
_CHINA_MINUTES = int(CHINA_TZ.utcoffset(None).total_seconds()) // 60
UTC_OFFSET = f"+{_CHINA_MINUTES // 60:02d}:{_CHINA_MINUTES % 60:02d}"

# Rule ids (RULES.md) under which the planted breaches are listed, in the order they are listed.
BREACH_KINDS = (
    "posting.days_per_week",
    "patrol.per_week",
    "patrol.half_day",
    "visit.overlap",
    "visit.off_site",
    "visit.implausible_patients",
    "visit.late_entry",
    "posting.min_duration",
    "patrol.fixed_schedule",
    "coverage.village",
)

# Km in a degree of latitude on the sphere of rules.geo's one Earth radius.
_KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180
_SMALL_VILLAGE = 200  # shanxi 3: 常住人口不足200人 — such villages are patrolled (RULES.md)
_P_MISSED_DAY = 0.008  # a posting doctor misses a workday without leave
_P_MADE_UP = 0.7  # ... and makes it up (a posting on the weekend, a patrol on another day)
_P_MISSED_SESSION = 0.02  # a patrol session or a sit-in day that did not happen as planned
_P_MOVED_SESSION = 0.04  # a patrol session held outside its declared slot
_P_NOTES = 0.08

# Word lists. Village names are built from syllables common in Guangxi place names
# (那 "rice field", 板 "village", 岜 "hill" come from Zhuang).
_COUNTY_FIRST = "隆上马宾横武都凌天田德靖乐凤罗昭融容藤岑"
_COUNTY_SECOND = "安林山阳业宁鸣平城江秀川峨东宜州溪"
_TOWNSHIP_FIRST = "城那板六渌古平江伏都东南西上新大龙凤石马金塘桥良和安乐长高云青"
_TOWNSHIP_SECOND = "安圩江平林峒桥和兴岭塘垌陇坡湾源丰阳乐"
_VILLAGE_FIRST = "那板岜六渌陇弄百古平江坡伏都浪东南西北上下新大小龙凤石马金银塘林桥岭良合和安乐长高水云山青竹花三双木"
_VILLAGE_SECOND = "坡良蒙桥排岭塘江利茂安平林怀造头洞垌屯坝湾寨岩冲田溪河口坪岗峰圩榜甘荷兰朗谷丰阳明光荣兴盛华源泉"
_SURNAMES = "黄黄黄韦韦韦陆陆覃覃蒙莫莫梁梁李李李陈陈罗罗农卢潘蓝廖刘刘杨张王周吴何谢唐邓冯苏曾赵林甘谭钟温马朱石玉闭"
_GIVEN = "伟芳秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂兰华红玉梅林海波宁春燕荣文志建国永德光金丹福庆凤琴婷雪斌鹏辉萍莲坤生源成龙"
_NOTES = (
    "高血压患者随访",
    "糖尿病患者随访",
    "老年人健康体检",
    "家庭医生签约服务",
    "儿童预防接种登记",
    "产后访视",
    "为行动不便老人送药上门",
    "慢病随访，血压控制尚可",
    "村民咨询医保报销",
    "网络信号差，回卫生院后补录",
    "暴雨，路滑晚到",
    "配合乡镇开展健康宣教",
    "药品不足，已上报卫生院",
)
_LEAVE_REASONS = ("病假", "事假", "家中老人住院陪护", "婚假", "年休假", "子女开学", "处理家事")
_TRAINING_TITLES = (
    "基本公共卫生服务项目培训",
    "乡村医生中医药适宜技术培训",
    "慢性病管理规范化培训",
    "急诊急救技能培训",
    "传染病防控与报告培训",
    "合理用药与处方规范培训",
    "家庭医生签约服务培训",
    "妇幼保健知识培训",
)


# --- calendar ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Day:
    date: date
    iso: str
    weekday: int  # ISO: 1 = Monday … 7 = Sunday
    workday: bool
    festival: bool  # an official holiday (春节, 劳动节…), not an ordinary weekend
    official: bool  # from the official calendar, not the Monday-Friday fallback


def _calendar_day(day: date) -> _Day:
    try:
        workday = is_workday(day)
        on_holiday, name = get_holiday_detail(day)
        festival, official = bool(on_holiday and name), True
    except NotImplementedError:
        # chinese_calendar knows only the years whose schedule has been published; RULES.md
        # (calendar conventions) falls back to Monday-Friday for the others.
        workday, festival, official = day.isoweekday() <= 5, False, False
    return _Day(day, day.isoformat(), day.isoweekday(), workday, festival, official)


def _stamp(day: date, minutes: int) -> str:
    """The local time `minutes` after midnight of `day`, as an ISO string with its offset."""
    days, minutes = divmod(minutes, 1440)
    if days:
        day += timedelta(days=days)
    return f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00{UTC_OFFSET}"


def _minutes(stamp: str) -> int:
    return int(stamp[11:13]) * 60 + int(stamp[14:16])


# --- places ----------------------------------------------------------------------------------


def _unique_name(rng: random.Random, first: str, second: str, suffix: str, taken: set[str]) -> str:
    for attempt in range(200):
        name = rng.choice(first) + rng.choice(second)
        if attempt >= 100:  # the two-syllable names are running out: add a third
            name += rng.choice(second)
        if name[0] != name[1] and name + suffix not in taken:
            taken.add(name + suffix)
            return name + suffix
    name = f"{rng.choice(first)}{rng.choice(second)}{len(taken) + 1}{suffix}"
    taken.add(name)
    return name


def _near(rng: random.Random, lat: float, lon: float, low_km: float, high_km: float):
    distance, angle = rng.uniform(low_km, high_km), rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(angle) / _KM_PER_DEGREE
    dlon = distance * math.sin(angle) / (_KM_PER_DEGREE * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _village_population(rng: random.Random) -> int:
    if rng.random() < 0.18:
        return rng.randint(60, _SMALL_VILLAGE - 1)
    return min(5000, max(_SMALL_VILLAGE, int(rng.lognormvariate(math.log(900), 0.6))))


def _make_places(rng: random.Random, townships: int, villages: int) -> tuple[JSON, list[JSON]]:
    county_code = f"45{rng.randint(1, 14):02d}{rng.randint(21, 31):02d}"
    county_name = rng.choice(_COUNTY_FIRST) + rng.choice(_COUNTY_SECOND) + "县"
    lat, lon = round(rng.uniform(22.6, 24.6), 6), round(rng.uniform(106.8, 110.2), 6)
    county = {
        "code": county_code,
        "name": county_name,
        "level": "county",
        "parent": None,
        "population": 0,
        "has_clinic": True,  # the county hospital
        "lat": lat,
        "lon": lon,
    }
    names: set[str] = set()
    towns = []
    for i in range(townships):
        suffix = "镇" if i == 0 or rng.random() < 0.7 else "乡"
        # The first town is the county seat, a walk from the county hospital.
        t_lat, t_lon = _near(rng, lat, lon, 0.5, 2.0) if i == 0 else _near(rng, lat, lon, 6, 28)
        towns.append(
            {
                "code": f"{county_code}{101 + i:03d}",
                "name": _unique_name(rng, _TOWNSHIP_FIRST, _TOWNSHIP_SECOND, suffix, names),
                "level": "township",
                "parent": county_code,
                "population": 0,
                "has_clinic": True,  # the township hospital (乡镇卫生院)
                "lat": t_lat,
                "lon": t_lon,
            }
        )
    per_town = [0] * townships
    for i in range(villages):  # every town gets one before any gets more, then at random
        per_town[i if i < townships else rng.randrange(townships)] += 1
    if max(per_town, default=0) > 799:
        raise ValueError("at most 799 villages a township (village codes are township + 201..999)")
    places = [county, *towns]
    for town, count in zip(towns, per_town, strict=True):
        for j in range(count):
            population = _village_population(rng)
            small = population < _SMALL_VILLAGE
            v_lat, v_lon = _near(rng, town["lat"], town["lon"], 1.0, 7.0)
            places.append(
                {
                    "code": f"{town['code']}{201 + j:03d}",
                    "name": _unique_name(rng, _VILLAGE_FIRST, _VILLAGE_SECOND, "村", names),
                    "level": "village",
                    "parent": town["code"],
                    "population": population,
                    "has_clinic": rng.random() < (0.25 if small else 0.92),
                    "lat": v_lat,
                    "lon": v_lon,
                }
            )
            town["population"] += population
        county["population"] += town["population"]
    return {"code": county_code, "name": county_name}, places


# --- doctors and assignments -------------------------------------------------------------


@dataclass(slots=True)
class _Duty:
    """One doctor's one assignment, as the visit writer needs it."""

    doctor: str
    assignment: str
    kind: str
    places: list[str]
    slots: list[tuple[int, str]]
    start: date
    end: date | None
    qualification: str
    absent: set[date] = field(default_factory=set)  # approved or pending leave, training

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


# About half hold a 执业(助理)医师 qualification: 0.52 of all, 0.48 of those serving villages,
# so the county meets the 0.45 of most presets and misses laiyang's 0.50 (RULES.md).
_QUALIFICATION_SHARES = {
    SITIN: (0.9, 0.1, 0.0, 0.0),
    PATROL: (0.4, 0.45, 0.12, 0.03),
    POSTING: (0.15, 0.26, 0.52, 0.07),
}


def _qualifications(rng: random.Random, kind: str, count: int) -> list[str]:
    """`count` qualifications in the shares of `kind` (largest remainder), shuffled."""
    shares = _QUALIFICATION_SHARES[kind]
    counts = [int(share * count) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i] * count)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    chosen = [q for q, n in zip(QUALIFICATIONS, counts, strict=True) for _ in range(n)]
    rng.shuffle(chosen)
    return chosen


def _patrol_routes(rng: random.Random, places: list[JSON]) -> list[list[str]]:
    """Small villages and villages without a clinic, grouped 1-4 to a route per township."""
    by_town: dict[str, list[str]] = defaultdict(list)
    for p in places:
        if p["level"] == "village" and (not p["has_clinic"] or p["population"] < _SMALL_VILLAGE):
            by_town[p["parent"]].append(p["code"])
    routes = []
    for town in sorted(by_town):
        codes = by_town[town]
        rng.shuffle(codes)
        while codes:
            size = rng.choice((1, 2, 2, 3, 3, 4))
            routes.append(sorted(codes[:size]))
            codes = codes[size:]
    return routes


def _patrol_slots(rng: random.Random, route: list[str]) -> list[tuple[int, str]]:
    count = min(4, max(2, len(route)))  # each village of the route about once a week
    weekdays = sorted(rng.sample(range(1, 6), count))
    return [(weekday, rng.choice(("am", "pm"))) for weekday in weekdays]


def _make_doctors(
    rng: random.Random, places: list[JSON], count: int, start: date
) -> tuple[list[JSON], list[JSON], list[_Duty]]:
    towns = [p["code"] for p in places if p["level"] == "township"]
    county = places[0]["code"]
    routes = _patrol_routes(rng, places)
    clinics = sorted(
        (
            p
            for p in places
            if p["level"] == "village" and p["has_clinic"] and p["population"] >= _SMALL_VILLAGE
        ),
        key=lambda p: (-p["population"], p["code"]),
    )
    sitin = min(count, max(1 if count >= 3 else 0, round(count * 0.08)))
    patrol = min(count - sitin, max(len(routes), round(count * 0.14))) if routes else 0
    if patrol == count - sitin and clinics and count - sitin > 1:
        patrol -= 1  # keep one posting when there is a clinic to post to
    posting = count - sitin - patrol
    if not clinics:  # nowhere to post: patrol or sit in instead
        patrol, posting = (patrol + posting, 0) if routes else (patrol, 0)
        sitin = count - patrol
    roles: list[tuple[str, list[str]]] = [(SITIN, [towns[i % len(towns)]]) for i in range(sitin)]
    roles += [(PATROL, routes[i % len(routes)]) for i in range(patrol)]
    parent = {p["code"]: p["parent"] for p in places}
    roles += [(POSTING, [code]) for code in _posted_villages(clinics, posting, roles, parent)]
    rng.shuffle(roles)

    taken: set[str] = set()
    doctors, assignments, duties = [], [], []
    role_count = Counter(kind for kind, _ in roles)
    qualifications = {
        kind: _qualifications(rng, kind, role_count[kind]) for kind in sorted(role_count)
    }
    for n, (kind, targets) in enumerate(roles, start=1):
        doctor, assignment = f"D{n:04d}", f"A{n:04d}"
        qualification = qualifications[kind].pop()
        if kind == SITIN:
            home, slots, end = county, [(rng.randint(1, 5), "am")], add_months(start, 24)
            slots.append((slots[0][0], "pm"))
        elif kind == PATROL:
            home, slots, end = parent[targets[0]], _patrol_slots(rng, targets), None
        else:
            village_based = qualification in ("village_doctor", "other")
            home = targets[0] if village_based else parent[targets[0]]
            slots = [(weekday, slot) for weekday in range(1, 6) for slot in ("am", "pm")]
            end = None if rng.random() < 0.5 else add_months(start, 12)
        doctors.append(
            {
                "id": doctor,
                "name": _person_name(rng, taken),
                "qualification": qualification,
                "home": home,
            }
        )
        assignments.append(
            {
                "id": assignment,
                "doctor": doctor,
                "kind": kind,
                "places": list(targets),
                "start": start.isoformat(),
                "end": end.isoformat() if end else None,
                "slots": [{"weekday": w, "slot": s} for w, s in slots],
            }
        )
        duties.append(
            _Duty(doctor, assignment, kind, list(targets), slots, start, end, qualification)
        )
    return doctors, assignments, duties


def _posted_villages(
    clinics: list[JSON], count: int, roles: list[tuple[str, list[str]]], parent: dict[str, str]
) -> list[str]:
    """A doctor for each clinic, biggest village first; the rest where a township is short.

    Extra doctors go to the township with the fewest village doctors per 1,000 residents
    (staffing.doctors_per_1000, RULES.md), to its village with the most residents a doctor.
    """
    posted = [c["code"] for c in clinics[:count]]
    if count <= len(clinics):
        return posted
    population = {c["code"]: c["population"] for c in clinics}
    residents: Counter[str] = Counter()
    for p in population:
        residents[parent[p]] += population[p]
    staff = Counter(parent[code] for code in posted)
    staff.update(parent[targets[0]] for kind, targets in roles if kind == PATROL)
    per_village = Counter(posted)
    by_town: dict[str, list[str]] = defaultdict(list)
    for code in population:
        by_town[parent[code]].append(code)
    for _ in range(count - len(clinics)):
        town = min(sorted(by_town), key=lambda t: staff[t] / residents[t])
        village = max(by_town[town], key=lambda v: population[v] / (per_village[v] + 1))
        staff[town] += 1
        per_village[village] += 1
        posted.append(village)
    return posted


def _person_name(rng: random.Random, taken: set[str]) -> str:
    for _ in range(100):
        given = "".join(rng.choices(_GIVEN, k=1 if rng.random() < 0.3 else 2))
        name = rng.choice(_SURNAMES) + given
        if name not in taken:
            taken.add(name)
            return name
    name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=3))
    taken.add(name)
    return name


# --- leave and training --------------------------------------------------------------------


def _free_span(
    rng: random.Random, days: list[_Day], length: int, busy: set[date]
) -> tuple[date, date] | None:
    """A run of `length` days starting on a workday that touches none of `busy`."""
    starts = [d.date for d in days[: len(days) - length + 1] if d.workday]
    for _ in range(20):
        if not starts:
            return None
        first = rng.choice(starts)
        span = {first + timedelta(days=i) for i in range(length)}
        if not span & busy:
            return first, first + timedelta(days=length - 1)
    return None


def _make_absences(
    rng: random.Random, days: list[_Day], duties: list[_Duty]
) -> tuple[list[JSON], list[JSON]]:
    leave: list[JSON] = []
    trainings: list[JSON] = []
    for duty in duties:
        busy: set[date] = set()
        r = rng.random()
        for _ in range(2 if r < 0.05 else 1 if r < 0.22 else 0):
            span = _free_span(rng, days, rng.randint(1, 3 if duty.kind == PATROL else 5), busy)
            if span is None:
                continue
            status = rng.choices(("approved", "pending", "refused"), (80, 12, 8))[0]
            taken = {span[0] + timedelta(days=i) for i in range((span[1] - span[0]).days + 1)}
            busy |= taken
            if status != "refused":  # a refused request is worked; a pending one is taken
                duty.absent |= taken
            leave.append(
                {
                    "id": "",  # numbered below, in date order
                    "doctor": duty.doctor,
                    "start": span[0].isoformat(),
                    "end": span[1].isoformat(),
                    "status": status,
                    "reason": rng.choice(_LEAVE_REASONS),
                }
            )
        if duty.qualification != "village_doctor":
            continue
        for _ in range(rng.randint(1, 3) if len(days) >= 28 else rng.randint(0, 1)):
            span = _free_span(rng, days, rng.randint(2, 5), busy)
            if span is None:
                continue
            taken = {span[0] + timedelta(days=i) for i in range((span[1] - span[0]).days + 1)}
            busy |= taken
            duty.absent |= taken
            trainings.append(
                {
                    "id": "",
                    "doctor": duty.doctor,
                    "start": span[0].isoformat(),
                    "end": span[1].isoformat(),
                    "title": rng.choice(_TRAINING_TITLES),
                }
            )
    trainings.sort(key=lambda t: (t["start"], t["doctor"]))
    for n, training in enumerate(trainings, start=1):
        training["id"] = f"T{n:04d}"
    leave.sort(key=lambda lv: (lv["start"], lv["doctor"]))
    for n, request in enumerate(leave, start=1):
        request["id"] = f"L{n:04d}"
    return leave, trainings


# --- visits ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """The breaches that shape the schedule itself, decided before any visit is written."""

    short_week: dict[str, set[date]] = field(default_factory=dict)  # doctor → the 3 duty days
    single_session: dict[str, str] = field(default_factory=dict)  # doctor → week label
    unvisited_from: dict[str, date] = field(default_factory=dict)  # village → first day skipped


class _VisitWriter:
    """Writes visit records: times, patients by population, position noise, entry delay."""

    def __init__(self, rng: random.Random, places: list[JSON], duties: list[_Duty]) -> None:
        self.rng = rng
        self.where = {p["code"]: (p["lat"], p["lon"]) for p in places}
        posted = Counter(d.places[0] for d in duties if d.kind == POSTING)
        self.per_hour: dict[str, float] = {}  # expected patients an hour on site
        for p in places:
            if p["level"] == "village" and p["code"] in posted:
                daily = min(35.0, max(4.0, p["population"] / 110))
                self.per_hour[p["code"]] = daily / 7.5 / posted[p["code"]]
            elif p["level"] == "village":
                self.per_hour[p["code"]] = min(25.0, max(1.0, p["population"] / 45)) / 4
            else:
                self.per_hour[p["code"]] = 4.0
        self.by_doctor: dict[str, list[JSON]] = defaultdict(list)

    def add(self, duty: _Duty, place: str, day: date, t_in: int, t_out: int) -> JSON:
        # The benchmarks write ~150,000 of these: rng.random() arithmetic over randint.
        rng, rand = self.rng, self.rng.random
        lam = self.per_hour[place] * (t_out - t_in) / 60
        patients = min(40, max(0, round(rng.gauss(lam, math.sqrt(lam) + 0.5))))
        lat, lon = self.where[place]
        accuracy = 4 + 21 * rand() if rand() < 0.9 else 30 + 90 * rand()
        noise = accuracy * 0.5 / 1000 / _KM_PER_DEGREE
        r = rand()
        if r < 0.75:
            delay = 1 + int(30 * rand())
        elif r < 0.96:
            delay = 31 + int(450 * rand())
        else:  # no signal in the village: entered on a later trip to town
            delay = 1440 * (1 + int(3 * rand())) + int(600 * rand())
        iso = day.isoformat()
        visit = {
            "id": "",
            "doctor": duty.doctor,
            "assignment": duty.assignment,
            "place": place,
            "kind": duty.kind,
            "check_in": f"{iso}T{t_in // 60:02d}:{t_in % 60:02d}:00{UTC_OFFSET}",
            "check_out": f"{iso}T{t_out // 60:02d}:{t_out % 60:02d}:00{UTC_OFFSET}",
            "patients": patients,
            "lat": round(lat + rng.gauss(0, noise), 6),
            "lon": round(lon + rng.gauss(0, noise / math.cos(math.radians(lat))), 6),
            "accuracy_m": round(accuracy, 1),
            "notes": rng.choice(_NOTES) if rand() < _P_NOTES else "",
            "recorded_at": _stamp(day, t_out + delay),
        }
        self.by_doctor[duty.doctor].append(visit)
        return visit

    def duty_day(self, duty: _Duty, day: date) -> None:
        """A posting or sit-in duty day: a morning and an afternoon record, or one all day."""
        rng, place = self.rng, duty.places[0]
        if rng.random() < 0.6:
            self.add(duty, place, day, 480 + rng.randint(-20, 10), 720 + rng.randint(-10, 20))
            self.add(duty, place, day, 840 + rng.randint(-15, 15), 1050 + rng.randint(-15, 20))
        else:
            self.add(duty, place, day, 480 + rng.randint(-20, 10), 1020 + rng.randint(-20, 30))

    def session(self, duty: _Duty, place: str, day: date, slot: str) -> None:
        """A patrol session: half a day, 3.5 to 4.5 hours."""
        t_in = (480 if slot == "am" else 840) + self.rng.randint(-20, 20)
        self.add(duty, place, day, t_in, t_in + self.rng.randint(210, 270))


def _write_posting(w: _VisitWriter, duty: _Duty, week: list[_Day], plan: _Plan) -> None:
    rng = w.rng
    planted = plan.short_week.get(duty.doctor)
    if planted and week[0].date <= min(planted) <= week[-1].date:
        for duty_date in sorted(planted):
            w.duty_day(duty, duty_date)
        return
    missed = 0
    for day in week:
        if not (day.workday and duty.covers(day.date)) or day.date in duty.absent:
            continue
        if rng.random() < _P_MISSED_DAY:
            missed += 1
        else:
            w.duty_day(duty, day.date)
    if missed and rng.random() < _P_MADE_UP:
        weekend = [
            d
            for d in week
            if not d.workday
            and not d.festival
            and duty.covers(d.date)
            and d.date not in duty.absent
        ]
        if weekend:
            w.duty_day(duty, rng.choice(weekend).date)


def _write_sitin(w: _VisitWriter, duty: _Duty, week: list[_Day]) -> None:
    available = [d for d in week if d.workday and duty.covers(d.date) and d.date not in duty.absent]
    if not available or w.rng.random() < _P_MISSED_SESSION:
        return
    usual = [d for d in available if d.weekday == duty.slots[0][0]]
    w.duty_day(duty, (usual or available)[0].date)  # a holiday moves it to the next workday


def _write_patrol(
    w: _VisitWriter, duty: _Duty, week: list[_Day], plan: _Plan, last_seen: dict[str, date]
) -> None:
    rng = w.rng
    available = [d for d in week if d.workday and duty.covers(d.date) and d.date not in duty.absent]
    free = [(d.date, slot) for d in available for slot in ("am", "pm")]
    if duty.slots:
        by_weekday = {d.weekday: d.date for d in available}
        planned = [(by_weekday[wd], s) for wd, s in duty.slots if wd in by_weekday]
    else:  # no declared slots: whenever suits, two or three times a week
        planned = rng.sample(free, min(len(free), rng.randint(2, 3)))
    if plan.single_session.get(duty.doctor) == week_label(week[0].date):
        sessions = planned[:1]
    else:
        sessions = []
        taken = set(planned)
        for when in planned:
            r = rng.random()
            if r < _P_MISSED_SESSION + _P_MOVED_SESSION:  # held at another time, or not at all
                others = [f for f in free if f not in taken]
                if r < _P_MISSED_SESSION * (1 - _P_MADE_UP) or not others:
                    continue
                when = rng.choice(others)
                taken.add(when)
            sessions.append(when)
        # Slots lost to a holiday or to leave are held on other workdays of the week.
        target = max(min(2, len(available)), min(len(duty.slots), len(free)))
        others = [f for f in free if f not in taken]
        for when in rng.sample(others, min(len(others), max(0, target - len(planned)))):
            sessions.append(when)
    for day, slot in sorted(sessions):
        due = [
            p for p in duty.places if p not in plan.unvisited_from or day < plan.unvisited_from[p]
        ]
        if due:  # the village of the route waiting longest, so that none waits two weeks
            place = min(due, key=lambda p: last_seen.get(p, date.min))
            last_seen[place] = day
            w.session(duty, place, day, slot)


# --- breaches --------------------------------------------------------------------------------


def _clean_weeks(duty: _Duty, weeks: list[list[_Day]]) -> list[list[_Day]]:
    """Ordinary weeks of the duty: five workdays Monday to Friday, no leave or training."""
    clean = [
        week
        for week in weeks
        if len(week) == 7
        and all(d.workday == (d.weekday <= 5) for d in week)
        and all(duty.covers(d.date) and d.date not in duty.absent for d in week)
    ]
    return clean[1:-1] if len(clean) > 2 else clean


def _plan_breaches(
    rng: random.Random,
    duties: list[_Duty],
    assignments: list[JSON],
    places: list[JSON],
    days: list[_Day],
    weeks: list[list[_Day]],
) -> tuple[_Plan, list[tuple[str, _Duty, JSON]]]:
    """Choose a different doctor for each breach; return the plan and what to fill in later."""
    plan = _Plan()
    todo: list[tuple[str, _Duty, JSON]] = []
    used: set[str] = set()
    assignment_of = {a["id"]: a for a in assignments}
    patrols = [d for d in duties if d.kind == PATROL]
    postings = [d for d in duties if d.kind == POSTING]
    no_clinic = {p["code"] for p in places if p["level"] == "village" and not p["has_clinic"]}

    def pick(candidates: list[_Duty]) -> _Duty | None:
        left = [d for d in candidates if d.doctor not in used]
        if not left:
            return None
        chosen = rng.choice(left)
        used.add(chosen.doctor)
        return chosen

    # coverage.village: a village without a clinic, left unvisited for the last three weeks.
    if len(days) >= 28:
        routes = [d for d in patrols if set(d.places) & no_clinic]
        duty = pick([d for d in routes if len(d.places) > 1] or routes)
        if duty:
            village = rng.choice(sorted(set(duty.places) & no_clinic))
            plan.unvisited_from[village] = days[-21].date
            used |= {d.doctor for d in patrols if village in d.places}
            todo.append(
                ("coverage.village", duty, {"assignment": duty.assignment, "place": village})
            )

    duty = pick(patrols)
    if duty:  # patrol.fixed_schedule: a patrol that declares no slots
        duty.slots = []
        assignment_of[duty.assignment]["slots"] = []
        todo.append(("patrol.fixed_schedule", duty, {"assignment": duty.assignment}))

    duty = pick([d for d in patrols if len(d.slots) >= 2 and _clean_weeks(d, weeks)])
    if duty:  # patrol.per_week: one session in an ordinary week
        week = rng.choice(_clean_weeks(duty, weeks))
        plan.single_session[duty.doctor] = week_label(week[0].date)
        todo.append(("patrol.per_week", duty, {"week": week_label(week[0].date)}))

    duty = pick(patrols)
    if duty:  # patrol.half_day: an extra session of 2.5 hours
        todo.append(("patrol.half_day", duty, {}))

    duty = pick([d for d in patrols if len(d.places) > 1])
    if duty:  # visit.overlap: a record at a second village while the first is still open
        todo.append(("visit.overlap", duty, {}))

    duty = pick([d for d in postings if _clean_weeks(d, weeks)])
    if duty:  # posting.days_per_week: three duty days in an ordinary week
        week = rng.choice(_clean_weeks(duty, weeks))
        plan.short_week[duty.doctor] = set(sorted(rng.sample([d.date for d in week[:5]], 3)))
        todo.append(("posting.days_per_week", duty, {"week": week_label(week[0].date)}))

    duty = pick(postings)
    if duty:  # posting.min_duration: ended after about half the period, before six months
        end = min(duty.start + timedelta(days=len(days) * 55 // 100), add_months(duty.start, 6))
        duty.end = max(duty.start, end - timedelta(days=1))
        assignment_of[duty.assignment]["end"] = duty.end.isoformat()
        todo.append(("posting.min_duration", duty, {"assignment": duty.assignment}))

    for kind in ("visit.implausible_patients", "visit.off_site", "visit.late_entry"):
        duty = pick(postings) or pick(duties)
        if duty:
            todo.append((kind, duty, {}))
    return plan, todo


def _plant_visit_breaches(
    rng: random.Random,
    w: _VisitWriter,
    days: list[_Day],
    todo: list[tuple[str, _Duty, JSON]],
) -> list[tuple[str, _Duty, JSON]]:
    """Add or change the visits of the breaches that live in single records."""
    done = []
    for kind, duty, detail in todo:
        visits = w.by_doctor.get(duty.doctor, [])
        if kind == "patrol.half_day":
            busy = {v["check_in"][:10] for v in visits}
            free = [
                d
                for d in days
                if d.workday
                and duty.covers(d.date)
                and d.date not in duty.absent
                and d.iso not in busy
            ]
            if not free:
                continue
            visit = w.add(duty, duty.places[0], rng.choice(free).date, 510, 660)
            detail = {"assignment": duty.assignment, "visit": visit, "hours": 2.5}
        elif kind == "visit.overlap":
            if not visits:
                continue
            first = rng.choice(visits)
            other = rng.choice([p for p in duty.places if p != first["place"]])
            t_in = _minutes(first["check_in"]) + 90
            second = w.add(
                duty, other, date.fromisoformat(first["check_in"][:10]), t_in, t_in + 210
            )
            detail = {"assignment": duty.assignment, "visits": [first, second]}
        elif kind == "visit.implausible_patients":
            by_day: dict[str, list[JSON]] = defaultdict(list)
            for v in visits:
                by_day[v["check_in"][:10]].append(v)
            halves = [sorted(pair, key=lambda v: v["check_in"]) for pair in by_day.values()]
            halves = [pair for pair in halves if len(pair) == 2]
            if not halves and not visits:
                continue
            visit = rng.choice(halves)[1] if halves else rng.choice(visits)
            day = date.fromisoformat(visit["check_in"][:10])
            visit["check_out"] = _stamp(day, _minutes(visit["check_in"]) + 120)
            visit["patients"] = 200
            detail = {"visit": visit, "patients": 200, "hours": 2.0}
        elif kind == "visit.off_site":
            if not visits:
                continue
            visit = rng.choice(visits)
            visit["lat"] = round(visit["lat"] + rng.uniform(0.055, 0.075), 6)
            visit["lon"] = round(visit["lon"] + rng.uniform(-0.02, 0.02), 6)
            there = w.where[visit["place"]]
            km = haversine_km(there[0], there[1], visit["lat"], visit["lon"])
            detail = {"visit": visit, "place": visit["place"], "distance_km": round(km, 1)}
        elif kind == "visit.late_entry":
            if not visits:
                continue
            visit = rng.choice(visits)
            day = date.fromisoformat(visit["check_out"][:10])
            recorded = _minutes(visit["check_out"]) + 12 * 1440 + rng.randint(0, 180)
            visit["recorded_at"] = _stamp(day, recorded)
            detail = {"visit": visit, "delay_days": 12}
        elif kind == "posting.days_per_week":
            detail = {"assignment": duty.assignment, **detail, "duty_days": 3, "required": 5}
        elif kind == "patrol.per_week":
            detail = {"assignment": duty.assignment, **detail, "sessions": 1, "required": 2}
        elif kind == "posting.min_duration":
            detail = {
                **detail,
                "start": duty.start.isoformat(),
                "end": duty.end.isoformat() if duty.end else None,
                "required_end": add_months(duty.start, 6).isoformat(),
            }
        done.append((kind, duty, detail))
    return done


def _coverage_detail(detail: JSON, visits: list[JSON], last_day: date, first_day: date) -> JSON:
    seen = [v["check_in"][:10] for v in visits if v["place"] == detail["place"]]
    since = date.fromisoformat(max(seen)) if seen else first_day
    return {**detail, "last_visit": max(seen) if seen else None, "days": (last_day - since).days}


def _visit_ids(value: Any) -> Any:
    if isinstance(value, dict) and "check_in" in value:
        return value["id"]
    if isinstance(value, list):
        return [_visit_ids(v) for v in value]
    return value


# --- the scenario ----------------------------------------------------------------------------


def generate_county(
    *,
    seed: int = 2026,
    townships: int = 10,
    villages: int = 120,
    doctors: int = 150,
    start: date = date(2026, 1, 5),
    weeks: int = 26,
    breaches: bool = True,
) -> Scenario:
    """A demo county and `weeks` weeks of its field data from `start`; the same for a seed."""
    if not 1 <= townships <= 899:
        raise ValueError("townships must be 1 to 899 (township codes are county + 101..999)")
    if villages < 0 or doctors < 0 or weeks < 1:
        raise ValueError("villages and doctors must be >= 0 and weeks >= 1")
    rng = random.Random(seed)
    county, places = _make_places(rng, townships, villages)
    doctor_list, assignments, duties = _make_doctors(rng, places, doctors, start)
    days = [_calendar_day(start + timedelta(days=i)) for i in range(weeks * 7)]
    weeks_of_days: list[list[_Day]] = []
    for day in days:  # ISO weeks, Monday to Sunday; the first and last may be partial
        if not weeks_of_days or day.weekday == 1:
            weeks_of_days.append([])
        weeks_of_days[-1].append(day)
    leave, trainings = _make_absences(rng, days, duties)

    plan, todo = (
        _plan_breaches(rng, duties, assignments, places, days, weeks_of_days)
        if breaches
        else (_Plan(), [])
    )
    writer = _VisitWriter(rng, places, duties)
    for duty in duties:
        last_seen: dict[str, date] = {}
        for week in weeks_of_days:
            if duty.kind == POSTING:
                _write_posting(writer, duty, week, plan)
            elif duty.kind == PATROL:
                _write_patrol(writer, duty, week, plan, last_seen)
            else:
                _write_sitin(writer, duty, week)
    done = _plant_visit_breaches(rng, writer, days, todo)

    visits = [v for duty in duties for v in writer.by_doctor.get(duty.doctor, [])]
    visits.sort(key=lambda v: (v["check_in"], v["doctor"], v["place"]))
    for n, visit in enumerate(visits, start=1):
        visit["id"] = f"V-{visit['check_in'][:4]}-{n:06d}"
    planted = []
    for kind, duty, detail in done:
        if kind == "coverage.village":
            detail = _coverage_detail(detail, visits, days[-1].date, days[0].date)
        planted.append(
            {
                "kind": kind,
                "doctor": duty.doctor,
                "detail": {key: _visit_ids(value) for key, value in detail.items()},
            }
        )
    planted.sort(key=lambda b: BREACH_KINDS.index(b["kind"]))

    fallback_years = sorted({d.date.year for d in days if not d.official})
    return {
        "county": county,
        "places": places,
        "doctors": doctor_list,
        "assignments": assignments,
        "visits": visits,
        "leave": leave,
        "trainings": trainings,
        "meta": {
            "seed": seed,
            "generated_for": {
                "townships": townships,
                "villages": villages,
                "doctors": doctors,
                "start": start.isoformat(),
                "weeks": weeks,
                "breaches": breaches,
            },
            "period": {"start": days[0].iso, "end": days[-1].iso},
            "calendar": {"source": "chinese_calendar", "fallback_years": fallback_years},
            "breaches": planted,
        },
    }


def write_scenario(path: str | Path, scenario: Scenario) -> Path:
    """Write a scenario as UTF-8 JSON with its Chinese readable (not \\u-escaped)."""
    path = Path(path)
    path.write_text(json.dumps(scenario, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def summarize(scenario: Scenario) -> JSON:
    """Counts of a scenario: places by level, doctors, assignments by kind, visits and so on."""
    levels = Counter(p["level"] for p in scenario["places"])
    kinds = Counter(a["kind"] for a in scenario["assignments"])
    return {
        "places": {level: levels[level] for level in PLACE_LEVELS},
        "doctors": len(scenario["doctors"]),
        "assignments": {kind: kinds[kind] for kind in DUTY_KINDS},
        "visits": len(scenario["visits"]),
        "patients": sum(v["patients"] for v in scenario["visits"]),
        "leave": len(scenario["leave"]),
        "trainings": len(scenario["trainings"]),
        "breaches": len(scenario.get("meta", {}).get("breaches", [])),
    }
