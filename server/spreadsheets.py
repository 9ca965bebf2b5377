"""Reading a county's reference data from spreadsheets (issue 15): places, doctors,
assignments and users, from CSV or XLSX files with zh-CN headers (English aliases accepted),
and writing the blank templates the pages offer for download.

Parsing only: cells become the scenario format's values (docs/scenario-format.md) and every
problem a `CellError` naming its sheet, row (as the spreadsheet numbers it) and column, in
English and Chinese. What the rows refer to (a doctor's home place, a user's doctor) is
checked against the database by server/county_import.py. No Flask, no database here.

- A sheet's kind comes from its name (XLSX sheet, CSV file stem) when that is one of the
  kinds' names in either language, else from its headers.
- Codes typed into Excel become numbers (450623 → 450623.0); they are read back as text.
- Text a spreadsheet would run as a formula is read as written; the templates never hold
  formulas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from sync.records import valid_id

PLACES = "places"
DOCTORS = "doctors"
ASSIGNMENTS = "assignments"
USERS = "users"
KINDS = (PLACES, DOCTORS, ASSIGNMENTS, USERS)  # also the order they are imported in
KIND_NAMES_ZH = {PLACES: "地点", DOCTORS: "医生", ASSIGNMENTS: "任务", USERS: "用户"}

# The largest file the import reads, in rows of one sheet: a county has a few hundred places
# and doctors; a province's worth in one file is a mistake better refused than half read.
MAX_ROWS = 20_000

CSV_SUFFIXES = (".csv",)
XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True, slots=True)
class CellError:
    """One problem of one cell (or of a whole row or file when `column` is empty)."""

    sheet: str
    row: int  # as the spreadsheet numbers it: the header is row 1; 0 for the whole sheet
    column: str  # the header as the file wrote it; "" for the whole row
    message: str
    message_zh: str

    def text(self, language: str) -> str:
        return self.message_zh if language.startswith("zh") else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
            "message_zh": self.message_zh,
        }


@dataclass(slots=True)
class Sheet:
    """The rows of one kind read from one sheet, as scenario-format dicts, each with the
    spreadsheet row it came from (`rows[i]` came from `line[i]`)."""

    kind: str
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # field → header as written


@dataclass(slots=True)
class Upload:
    """Everything read from the uploaded files: the sheets by kind, and every problem."""

    sheets: dict[str, Sheet] = field(default_factory=dict)
    errors: list[CellError] = field(default_factory=list)

    def rows(self, kind: str) -> list[dict[str, Any]]:
        sheet = self.sheets.get(kind)
        return sheet.rows if sheet else []


class SpreadsheetError(ValueError):
    """A file that cannot be read at all (not CSV or XLSX, corrupt, too large)."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


# --- the columns ----------------------------------------------------------------------


class _Bad(ValueError):
    """A cell that does not hold what its column needs; args are (english, chinese)."""


Parse = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    zh: str  # the template's header
    aliases: tuple[str, ...]  # English and other accepted headers
    parse: Parse
    required: bool = False
    hint_zh: str = ""
    hint_en: str = ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _plain(value: Any) -> str | None:
    text = _text(value)
    if text is not None and len(text) > 100:
        raise _Bad("must be at most 100 characters", "不能超过 100 个字符")
    return text


def _code(value: Any) -> str | None:
    text = _text(value)
    if text is not None and not valid_id(text):
        raise _Bad(
            "must be a code of letters, digits, '_', '.', ':' or '-' (at most 64)",
            "须为字母、数字、“_”“.”“:”“-”组成的编码（最多 64 位）",
        )
    return text


def _codes(value: Any) -> list[str] | None:
    text = _text(value)
    if text is None:
        return None
    parts = [p for p in re.split(r"[;；,，、\s]+", text) if p]
    for part in parts:
        if not valid_id(part):
            raise _Bad(
                f"{part[:20]!r} is not a place code; separate codes with ';'",
                f"“{part[:20]}”不是地点编码；多个编码请用“;”分隔",
            )
    return parts


def _choice(options: dict[str, str]) -> Parse:
    """A value from a fixed list, given in Chinese or as the English word."""
    accepted = {k.lower(): v for k, v in options.items()} | {v: v for v in options.values()}

    def parse(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        found = accepted.get(text.lower())
        if found is None:
            zh = "、".join(k for k in options if not k.isascii())
            en = ", ".join(sorted(set(options.values())))
            raise _Bad(f"must be one of {en}", f"须为以下之一：{zh}")
        return found

    return parse


def _whole(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _Bad("must be a whole number >= 0", "须为不小于 0 的整数")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        raise _Bad("must be a whole number >= 0", "须为不小于 0 的整数")
    return value


def _number(low: float, high: float) -> Parse:
    def parse(value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            number = float(value) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise _Bad(
                f"must be a number from {low:g} to {high:g}", f"须为 {low:g} 到 {high:g} 的数"
            )
        return number

    return parse


_YES = {"是", "有", "yes", "y", "true", "1", "√", "✓"}
_NO = {"否", "无", "没有", "no", "n", "false", "0", "×", "✗"}


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    if text.lower() in _YES:
        return True
    if text.lower() in _NO:
        return False
    raise _Bad("must be yes or no (是/否)", "须为“是”或“否”")


def _date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if text is None:
        return None
    normalised = re.sub(r"[/.年月]", "-", text).rstrip("日")
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", normalised)
    try:
        if match is None:
            raise ValueError(text)
        return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        raise _Bad("must be a date like 2026-01-05", "须为日期，如 2026-01-05") from None


_WEEKDAYS_ZH = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}
_SLOT_ZH = {"上午": "am", "下午": "pm"}


def _slots(value: Any) -> list[dict[str, Any]] | None:
    """A patrol's schedule: `1am;1pm;3am` or `周一上午、周三下午`."""
    text = _text(value)
    if text is None:
        return None
    slots = []
    for part in (p for p in re.split(r"[;；,，、\s]+", text) if p):
        english = re.fullmatch(r"([1-7])\s*(am|pm)", part, re.IGNORECASE)
        chinese = re.fullmatch(r"(?:周|星期)([一二三四五六日天])(上午|下午)", part)
        if english:
            slot = {"weekday": int(english[1]), "slot": english[2].lower()}
        elif chinese:
            slot = {"weekday": _WEEKDAYS_ZH[chinese[1]], "slot": _SLOT_ZH[chinese[2]]}
        else:
            raise _Bad(
                f"{part[:20]!r} is not a slot; write e.g. 1am;3pm (1 = Monday)",
                f"“{part[:20]}”不是时段；请写如“周一上午、周三下午”",
            )
        if slot not in slots:
            slots.append(slot)
    return slots


LEVELS = {"县": "county", "县区": "county", "乡镇": "township", "镇": "township", "乡": "township",
          "村": "village", "行政村": "village", "county": "county", "township": "township",
          "village": "village"}  # fmt: skip
QUALIFICATIONS = {
    "执业医师": "physician",
    "执业助理医师": "assistant_physician",
    "助理医师": "assistant_physician",
    "乡村医生": "village_doctor",
    "其他": "other",
    "physician": "physician",
    "assistant_physician": "assistant_physician",
    "village_doctor": "village_doctor",
    "other": "other",
}
DUTY_KINDS = {"派驻": "posting", "巡诊": "patrol", "坐诊": "sitin",
              "posting": "posting", "patrol": "patrol", "sitin": "sitin"}  # fmt: skip
ROLES = {
    "医生": "doctor",
    "乡镇审核员": "township_reviewer",
    "乡镇审核人员": "township_reviewer",
    "县级管理员": "county_admin",
    "县管理员": "county_admin",
    "doctor": "doctor",
    "township_reviewer": "township_reviewer",
    "county_admin": "county_admin",
}

COLUMNS: dict[str, tuple[Column, ...]] = {
    PLACES: (
        Column("code", "编码", ("code", "地点编码", "行政区划代码"), _code, True),
        Column("name", "名称", ("name", "地点名称"), _plain, True),
        Column("level", "级别", ("level",), _choice(LEVELS), True, "县、乡镇、村", "county, township, village"),
        Column("parent", "上级编码", ("parent", "上级"), _code, False, "县不填", "empty for the county"),
        Column("population", "人口", ("population",), _whole),
        Column("has_clinic", "有卫生室", ("has_clinic", "clinic", "有村卫生室"), _yes_no, False, "是、否", "yes, no"),
        Column("lat", "纬度", ("lat", "latitude"), _number(-90, 90)),
        Column("lon", "经度", ("lon", "longitude"), _number(-180, 180)),
    ),
    DOCTORS: (
        Column("id", "医生编号", ("id", "doctor_id", "编号"), _code, True),
        Column("name", "姓名", ("name",), _plain, True),
        Column("qualification", "资质", ("qualification",), _choice(QUALIFICATIONS), True,
               "执业医师、执业助理医师、乡村医生、其他",
               "physician, assistant_physician, village_doctor, other"),
        Column("home", "所属单位编码", ("home", "单位编码", "所属单位"), _code, True),
    ),
    ASSIGNMENTS: (
        Column("id", "任务编号", ("id", "assignment_id", "编号"), _code, True),
        Column("doctor", "医生编号", ("doctor", "doctor_id"), _code, True),
        Column("kind", "类型", ("kind", "任务类型"), _choice(DUTY_KINDS), True, "派驻、巡诊、坐诊", "posting, patrol, sitin"),
        Column("places", "地点编码", ("places", "地点"), _codes, True, "多个用“;”分隔", "separate several with ';'"),
        Column("start", "开始日期", ("start", "开始"), _date, True, "如 2026-01-05", "e.g. 2026-01-05"),
        Column("end", "结束日期", ("end", "结束"), _date, False, "含当天；不填为长期", "inclusive; empty = open-ended"),
        Column("slots", "时段", ("slots", "排班"), _slots, False, "如 周一上午、周三下午", "e.g. 1am;3pm (1 = Monday)"),
    ),
    USERS: (
        Column("username", "用户名", ("username", "user", "账号"), _code, True),
        Column("role", "角色", ("role",), _choice(ROLES), True, "医生、乡镇审核员、县级管理员",
               "doctor, township_reviewer, county_admin"),
        Column("doctor", "医生编号", ("doctor", "doctor_id"), _code, False, "角色为医生时必填", "for a doctor"),
        Column("unit", "单位编码", ("unit", "unit_code"), _code, False, "审核员填乡镇、管理员填县",
               "a reviewer's township, an admin's county"),
        Column("active", "启用", ("active", "enabled"), _yes_no, False, "是、否；不填为是", "yes, no; empty = yes"),
    ),
}  # fmt: skip


def _key(header: str) -> str:
    return re.sub(r"[\s_\-（）()*]", "", header).lower()


_HEADER_INDEX: dict[str, dict[str, Column]] = {
    kind: {_key(name): column for column in columns for name in (column.zh, column.field, *column.aliases)}
    for kind, columns in COLUMNS.items()
}  # fmt: skip


def kind_of(name: str, headers: Iterable[str]) -> str | None:
    """The kind of a sheet: by its name, else the kind whose required headers it has."""
    key = _key(PurePath(name).stem if "." in name else name)
    for kind in KINDS:
        if key in (kind, _key(KIND_NAMES_ZH[kind])):
            return kind
    found = {_key(h) for h in headers if h}
    best = None
    for kind in KINDS:
        index = _HEADER_INDEX[kind]
        required = {c.field for c in COLUMNS[kind] if c.required}
        present = {index[h].field for h in found if h in index}
        if required <= present and (best is None or len(present) > best[1]):
            best = (kind, len(present))
    return best[0] if best else None


# --- reading ---------------------------------------------------------------------------


def _rows_of_csv(content: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in zh-CN saves CSV as GBK
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SpreadsheetError(
            "the CSV file is not UTF-8 or GBK text", "CSV 文件不是 UTF-8 或 GBK 编码"
        )
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    return [list(row) for row in csv.reader(io.StringIO(text), dialect)]


def _sheets_of_xlsx(content: bytes) -> list[tuple[str, list[list[Any]]]]:
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise SpreadsheetError(
            f"the file is not a readable XLSX workbook ({type(exc).__name__})",
            "文件不是可读取的 XLSX 工作簿",
        ) from exc
    try:
        sheets = []
        for sheet in book.worksheets:
            rows = []
            for row in sheet.iter_rows(values_only=True):
                rows.append(list(row))
                if len(rows) > MAX_ROWS + 1:
                    break
            sheets.append((sheet.title, rows))
        return sheets
    finally:
        book.close()


def read_files(files: Iterable[tuple[str, bytes]]) -> Upload:
    """Read uploaded files (name, content): CSV files of one kind each, XLSX workbooks of
    one sheet per kind. Sheets of no known kind (a notes sheet) are passed over."""
    book = Upload()
    for filename, content in files:
        suffix = PurePath(filename).suffix.lower()
        if suffix in XLSX_SUFFIXES or content[:2] == b"PK":
            for title, rows in _sheets_of_xlsx(content):
                _read_sheet(book, title, rows, strict=False)
        elif suffix in CSV_SUFFIXES or suffix in ("", ".txt"):
            _read_sheet(book, PurePath(filename).name, _rows_of_csv(content), strict=True)
        else:
            raise SpreadsheetError(
                f"{filename}: send CSV or XLSX files, not {suffix}",
                f"{filename}：请上传 CSV 或 XLSX 文件，不支持 {suffix}",
            )
    _check_unique(book)
    return book


def _read_sheet(book: Upload, name: str, rows: list[list[Any]], *, strict: bool) -> None:
    while rows and all(_text(c) is None for c in rows[-1]):
        rows.pop()
    if not rows:
        return
    header_row = [(_text(c) or "") for c in rows[0]]
    kind = kind_of(name, header_row)
    if kind is None:
        # An XLSX sheet of notes (the template's 说明) is passed over; a CSV file is data.
        if strict:
            book.errors.append(
                CellError(
                    name,
                    1,
                    "",
                    "cannot tell what this sheet holds: name it places, doctors, "
                    "assignments or users, or use the template's headers",
                    "无法识别此表的内容：请将表命名为 地点、医生、任务 或 用户，或使用模板的表头",
                )
            )
        return
    if kind in book.sheets:
        book.errors.append(
            CellError(
                name,
                0,
                "",
                f"a second sheet of {kind}; put them in one",
                f"重复的“{KIND_NAMES_ZH[kind]}”表；请合并为一个",
            )  # fmt: skip
        )
        return
    if len(rows) - 1 > MAX_ROWS:
        book.errors.append(
            CellError(
                name,
                0,
                "",
                f"more than {MAX_ROWS} rows; split the file",
                f"超过 {MAX_ROWS} 行；请拆分文件",
            )  # fmt: skip
        )
        return
    sheet = Sheet(kind, name)
    index = _HEADER_INDEX[kind]
    positions: dict[int, Column] = {}
    for position, header in enumerate(header_row):
        column = index.get(_key(header)) if header else None
        if column is None:
            continue
        if column.field in sheet.headers:
            book.errors.append(
                CellError(name, 1, header, "this column appears twice", "此列重复出现")
            )
            continue
        sheet.headers[column.field] = header
        positions[position] = column
    for column in COLUMNS[kind]:
        if column.required and column.field not in sheet.headers:
            book.errors.append(
                CellError(
                    name,
                    1,
                    column.zh,
                    f"the column {column.field} ({column.zh}) is missing",
                    f"缺少“{column.zh}”列",
                )  # fmt: skip
            )
    book.sheets[kind] = sheet
    for line, raw in enumerate(rows[1:], start=2):
        if all(_text(c) is None for c in raw):
            continue
        record: dict[str, Any] = {}
        for position, column in positions.items():
            value = raw[position] if position < len(raw) else None
            header = sheet.headers[column.field]
            try:
                parsed = column.parse(value)
            except _Bad as exc:
                book.errors.append(CellError(name, line, header, *exc.args))
                parsed = None
                record[f"!{column.field}"] = True  # read, but wrong: no "is required" too
            if parsed is not None:
                record[column.field] = parsed
        for column in COLUMNS[kind]:
            if (
                column.required
                and column.field in sheet.headers
                and column.field not in record
                and f"!{column.field}" not in record
            ):
                book.errors.append(
                    CellError(name, line, sheet.headers[column.field], "is required", "必填")
                )
        sheet.rows.append({k: v for k, v in record.items() if not k.startswith("!")})
        sheet.lines.append(line)


_KEYS = {PLACES: "code", DOCTORS: "id", ASSIGNMENTS: "id", USERS: "username"}


def key_field(kind: str) -> str:
    """The field a row of `kind` is upserted by."""
    return _KEYS[kind]


def _check_unique(book: Upload) -> None:
    for kind, sheet in book.sheets.items():
        field_name = _KEYS[kind]
        first: dict[str, int] = {}
        for row, line in zip(sheet.rows, sheet.lines, strict=True):
            value = row.get(field_name)
            if value is None:
                continue
            if value in first:
                book.errors.append(
                    CellError(
                        sheet.name,
                        line,
                        sheet.headers[field_name],
                        f"{value!r} is on row {first[value]} already",
                        f"“{value}”已在第 {first[value]} 行出现",
                    )
                )
            else:
                first[value] = line


def error_at(book: Upload, kind: str, index: int, field_name: str, en: str, zh: str) -> CellError:
    """A `CellError` for row `index` of the sheet of `kind`, column `field_name` (for the
    database checks of server/county_import.py)."""
    sheet = book.sheets[kind]
    column = sheet.headers.get(field_name, field_name) if field_name else ""
    return CellError(sheet.name, sheet.lines[index], column, en, zh)


# --- templates ---------------------------------------------------------------------------


def template_xlsx() -> bytes:
    """A workbook with one empty sheet per kind (zh-CN headers, bold and frozen) and a
    说明 sheet listing each column, its English alias and what it takes."""
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "说明"
    notes.append(["表 / sheet", "列 / column", "English", "必填 / required", "说明", "notes"])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for kind in KINDS:
        sheet = book.create_sheet(KIND_NAMES_ZH[kind])
        sheet.append([c.zh for c in COLUMNS[kind]])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for column in COLUMNS[kind]:
            notes.append(
                [
                    f"{KIND_NAMES_ZH[kind]} / {kind}",
                    column.zh,
                    column.field,
                    "是 / yes" if column.required else "",
                    column.hint_zh,
                    column.hint_en,
                ]
            )
            letter = sheet.cell(row=1, column=COLUMNS[kind].index(column) + 1).column_letter
            sheet.column_dimensions[letter].width = max(12, len(column.zh) * 3)
            # Codes and dates as text, so Excel keeps leading zeros and does not reformat.
            if column.parse in (_code, _codes, _date):
                for row in range(2, 502):
                    sheet[f"{letter}{row}"].number_format = "@"
    notes.column_dimensions["A"].width = 20
    notes.column_dimensions["E"].width = 36
    notes.column_dimensions["F"].width = 40
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv(kind: str) -> bytes:
    """The header row of one kind as CSV (UTF-8 with a BOM, so Excel in zh-CN reads it)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([c.zh for c in COLUMNS[kind]])
    return out.getvalue().encode("utf-8-sig")


def write_xlsx(rows_by_kind: dict[str, list[dict[str, Any]]]) -> bytes:
    """Rows of the scenario format written in the template's layout (zh-CN headers): the
    export that a later import reads back unchanged."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for kind in KINDS:
        if kind not in rows_by_kind:
            continue
        sheet = book.create_sheet(KIND_NAMES_ZH[kind])
        columns = COLUMNS[kind]
        sheet.append([c.zh for c in columns])
        for row in rows_by_kind[kind]:
            sheet.append([_cell(row.get(c.field), c) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.parse is _codes:
        return ";".join(value)
    if column.parse is _slots:
        return ";".join(f"{s['weekday']}{s['slot']}" for s in value)
    if column.parse is _yes_no:
        return "是" if value else "否"
    return value
