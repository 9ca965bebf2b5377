"""The forms as data. A new form version is a new FormDef; old versions stay valid so a
tablet that has not updated yet can still sync what it recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from rules.model import DUTY_KINDS, LEAVE_STATUSES
from sync.protocol import LEAVE, TRAININGS, VISITS

# Field types a definition may use; forms.schemas maps each to a marshmallow field.
ID = "id"
TEXT = "text"
INTEGER = "integer"
NUMBER = "number"
DATETIME = "datetime"
DATE = "date"
CHOICE = "choice"

# A visit longer than this is not a duty visit but a typing mistake (an overnight posting
# is logged as two records).
MAX_VISIT_HOURS = 24
# How far ahead of the server's clock a visit may start (a tablet on the wrong time zone).
MAX_FUTURE_HOURS = 24
# The dates the server accepts in any date or datetime field (the local date at the value's
# own offset), and in the periods of its pages (issue 13). Beyond them a typing slip (year
# 1, year 9999) would be stored and then break week and month arithmetic at the edge of
# Python's dates in every later evaluation, import, page and export of that doctor.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
DATE_BOUNDS_MESSAGE = (
    f"must be a date from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"
)


# The periods the pages and the API read (weeks, months): the accepted dates with ten years'
# margin, so that the weeks and months a page counts back or on from an accepted date (a
# 36-month trend, a 104-week heatmap) are always readable; beyond them a period label is a
# 400 naming the bound (issue 13: 9999-W52 ends in the year 10000).
PERIOD_EARLIEST = date(EARLIEST_DATE.year - 10, 1, 1)
PERIOD_LATEST = date(LATEST_DATE.year + 10, 12, 31)


def within_date_bounds(value: date) -> bool:
    """Whether a date, or a datetime's local date at its own offset, is one the server
    accepts (EARLIEST_DATE to LATEST_DATE)."""
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST_DATE <= day <= LATEST_DATE


def within_period_bounds(value: date) -> bool:
    """Whether a day of a period (a week, a month) is one the pages and the API read."""
    return PERIOD_EARLIEST <= value <= PERIOD_LATEST


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    label_zh: str
    label_en: str
    required: bool = True
    allow_none: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class FormDef:
    name: str
    version: int
    collection: str
    title_zh: str
    title_en: str
    fields: tuple[FieldDef, ...] = field(default_factory=tuple)

    def field(self, name: str) -> FieldDef:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    def labels(self, lang: str = "zh") -> dict[str, str]:
        return {f.name: (f.label_zh if lang.startswith("zh") else f.label_en) for f in self.fields}


_COMMON_DEVICE = (
    FieldDef("device_id", ID, "设备编号", "Device", required=False, allow_none=True),
    FieldDef("form_version", INTEGER, "表单版本", "Form version", required=False, minimum=1),
    FieldDef("recorded_at", DATETIME, "录入时间", "Recorded at", required=False, allow_none=True),
)

VISIT_V1 = FormDef(
    name="visit",
    version=1,
    collection=VISITS,
    title_zh="驻村巡诊记录",
    title_en="Visit log",
    fields=(
        FieldDef("doctor", ID, "医生", "Doctor"),
        FieldDef("assignment", ID, "派驻/巡诊任务", "Assignment", required=False, allow_none=True),
        FieldDef("place", ID, "地点（行政区划代码）", "Place (administrative code)"),
        FieldDef("kind", CHOICE, "类型", "Kind", choices=DUTY_KINDS),
        FieldDef("check_in", DATETIME, "到岗时间", "Check-in"),
        FieldDef("check_out", DATETIME, "离岗时间", "Check-out"),
        FieldDef("patients", INTEGER, "诊疗人次", "Patients seen", minimum=0, maximum=10_000),
        FieldDef(
            "lat",
            NUMBER,
            "纬度",
            "Latitude",
            required=False,
            allow_none=True,
            minimum=-90,
            maximum=90,
        ),
        FieldDef(
            "lon",
            NUMBER,
            "经度",
            "Longitude",
            required=False,
            allow_none=True,
            minimum=-180,
            maximum=180,
        ),
        FieldDef(
            "accuracy_m",
            NUMBER,
            "定位精度（米）",
            "Position accuracy (m)",
            required=False,
            allow_none=True,
            minimum=0,
            maximum=100_000,
        ),
        FieldDef("notes", TEXT, "备注", "Notes", required=False, allow_none=True, max_length=500),
        *_COMMON_DEVICE,
    ),
)

LEAVE_V1 = FormDef(
    name="leave",
    version=1,
    collection=LEAVE,
    title_zh="请假申请",
    title_en="Leave request",
    fields=(
        FieldDef("doctor", ID, "医生", "Doctor"),
        FieldDef("start", DATE, "开始日期", "Start"),
        FieldDef("end", DATE, "结束日期", "End"),
        FieldDef("reason", TEXT, "事由", "Reason", required=False, allow_none=True, max_length=500),
        FieldDef("status", CHOICE, "状态", "Status", required=False, choices=LEAVE_STATUSES),
        *_COMMON_DEVICE,
    ),
)

TRAINING_V1 = FormDef(
    name="training",
    version=1,
    collection=TRAININGS,
    title_zh="培训记录",
    title_en="Training record",
    fields=(
        FieldDef("doctor", ID, "医生", "Doctor"),
        FieldDef("start", DATE, "开始日期", "Start"),
        FieldDef("end", DATE, "结束日期", "End"),
        FieldDef("title", TEXT, "培训名称", "Title", max_length=200),
        *_COMMON_DEVICE,
    ),
)

FORMS: dict[tuple[str, int], FormDef] = {
    (form.collection, form.version): form for form in (VISIT_V1, LEAVE_V1, TRAINING_V1)
}
LATEST: dict[str, FormDef] = {}
for _form in FORMS.values():
    if _form.version >= LATEST.get(_form.collection, _form).version:
        LATEST[_form.collection] = _form


class UnknownForm(LookupError):
    """A collection or form version no definition exists for."""


def form_for(collection: str, version: int | None = None) -> FormDef:
    if version is None:
        if collection not in LATEST:
            raise UnknownForm(f"no form for collection {collection!r}")
        return LATEST[collection]
    try:
        return FORMS[(collection, version)]
    except KeyError:
        raise UnknownForm(f"no version {version} of the {collection!r} form") from None
