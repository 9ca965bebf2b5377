"""Reading the county import's spreadsheets (server/spreadsheets.py): zh-CN headers and
their English aliases, CSV and XLSX alike, every problem named by sheet, row and column in
both languages, and the templates read back as empty sheets of the right kinds."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from server.spreadsheets import (
    ASSIGNMENTS,
    DOCTORS,
    KINDS,
    PLACES,
    USERS,
    SpreadsheetError,
    kind_of,
    read_files,
    template_csv,
    template_xlsx,
    write_xlsx,
)


def xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(text: str, encoding: str = "utf-8-sig") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


PLACES_ZH = [
    ["编码", "名称", "级别", "上级编码", "人口", "有卫生室", "纬度", "经度"],
    [450999, "示范县", "县", None, None, None, None, None],
    [450999101, "甲镇", "乡镇", 450999, 12000, "是", 23.1, 108.3],
    ["450999101201", "石桥村", "村", "450999101", 850.0, "否", None, None],
]


def test_an_xlsx_with_chinese_headers_reads_as_the_scenario_format() -> None:
    upload = read_files([("county.xlsx", xlsx({"地点": PLACES_ZH}))])
    assert upload.errors == []
    assert upload.rows(PLACES) == [
        {"code": "450999", "name": "示范县", "level": "county"},
        {
            "code": "450999101",
            "name": "甲镇",
            "level": "township",
            "parent": "450999",
            "population": 12000,
            "has_clinic": True,
            "lat": 23.1,
            "lon": 108.3,
        },
        {
            "code": "450999101201",
            "name": "石桥村",
            "level": "village",
            "parent": "450999101",
            "population": 850,
            "has_clinic": False,
        },
    ]
    assert upload.sheets[PLACES].lines == [2, 3, 4]


def test_a_csv_with_english_headers_reads_the_same_as_chinese_ones() -> None:
    english = csv_bytes(
        "id,name,qualification,home\nD1,李明,physician,450999101\nD2,王芳,village_doctor,450999101201\n"
    )
    chinese = csv_bytes(
        "医生编号,姓名,资质,所属单位编码\nD1,李明,执业医师,450999101\nD2,王芳,乡村医生,450999101201\n"
    )
    a = read_files([("doctors.csv", english)])
    b = read_files([("医生.csv", chinese)])
    assert a.errors == b.errors == []
    assert a.rows(DOCTORS) == b.rows(DOCTORS)
    assert a.rows(DOCTORS)[1] == {
        "id": "D2",
        "name": "王芳",
        "qualification": "village_doctor",
        "home": "450999101201",
    }


def test_a_csv_saved_by_excel_in_gbk_is_read() -> None:
    upload = read_files(
        [("upload.csv", csv_bytes("编码,名称,级别\n450999,示范县,县\n", "gb18030"))]
    )
    assert upload.errors == []
    assert upload.rows(PLACES) == [{"code": "450999", "name": "示范县", "level": "county"}]


def test_each_problem_names_its_sheet_row_and_column_in_both_languages() -> None:
    rows = [
        ["任务编号", "医生编号", "类型", "地点编码", "开始日期", "结束日期", "时段"],
        ["A1", "D1", "巡诊", "450999101201;450999101202", "2026-01-05", None, "周一上午、周三下午"],
        ["A2", "D2", "出差", "450999101201", "2026/13/40", None, "8am"],
        ["A3", None, "派驻", "450999101201", datetime(2026, 1, 5), None, None],
    ]
    upload = read_files([("plan.xlsx", xlsx({"任务": rows}))])
    found = {(e.sheet, e.row, e.column): (e.message, e.message_zh) for e in upload.errors}
    assert set(found) == {
        ("任务", 3, "类型"),
        ("任务", 3, "开始日期"),
        ("任务", 3, "时段"),
        ("任务", 4, "医生编号"),
    }
    assert found[("任务", 3, "开始日期")] == (
        "must be a date like 2026-01-05",
        "须为日期，如 2026-01-05",
    )
    assert "派驻、巡诊、坐诊" in found[("任务", 3, "类型")][1]
    assert found[("任务", 4, "医生编号")] == ("is required", "必填")
    assert upload.rows(ASSIGNMENTS)[0] == {
        "id": "A1",
        "doctor": "D1",
        "kind": "patrol",
        "places": ["450999101201", "450999101202"],
        "start": "2026-01-05",
        "slots": [{"weekday": 1, "slot": "am"}, {"weekday": 3, "slot": "pm"}],
    }
    assert upload.rows(ASSIGNMENTS)[2]["start"] == "2026-01-05"  # an Excel date cell


def test_a_missing_required_column_and_a_repeated_code_are_reported() -> None:
    upload = read_files(
        [
            ("places.csv", csv_bytes("编码,名称,级别\n450999,示范县,县\n450999,又一县,县\n")),
            ("users.csv", csv_bytes("用户名,医生编号\nd1,D1\n")),
        ]
    )
    texts = {(e.sheet, e.row, e.column, e.message_zh) for e in upload.errors}
    assert ("places.csv", 3, "编码", "“450999”已在第 2 行出现") in texts
    assert ("users.csv", 1, "角色", "缺少“角色”列") in texts


def test_a_sheet_is_known_by_its_name_or_its_headers() -> None:
    assert kind_of("地点", []) == PLACES
    assert kind_of("Users.csv", []) == USERS
    assert kind_of("Sheet1", ["Username", "Role", "Unit"]) == USERS
    assert (
        kind_of("Sheet1", ["任务编号", "医生编号", "类型", "地点编码", "开始日期"]) == ASSIGNMENTS
    )
    assert kind_of("Sheet1", ["备注"]) is None
    unknown = read_files([("misc.csv", csv_bytes("备注\n随便\n"))])
    assert [e.message_zh[:9] for e in unknown.errors] == ["无法识别此表的内容"]


def test_a_file_that_is_neither_csv_nor_xlsx_is_refused() -> None:
    with pytest.raises(SpreadsheetError) as refused:
        read_files([("county.pdf", b"%PDF-1.4")])
    assert "CSV" in str(refused.value) and "CSV" in refused.value.message_zh
    with pytest.raises(SpreadsheetError):
        read_files([("county.xlsx", b"PK\x03\x04 not really a zip")])


def test_the_templates_read_back_as_empty_sheets_of_every_kind() -> None:
    book = load_workbook(io.BytesIO(template_xlsx()))
    assert book.sheetnames == ["说明", "地点", "医生", "任务", "用户"]
    upload = read_files([("template.xlsx", template_xlsx())])
    assert upload.errors == []
    assert sorted(upload.sheets) == sorted(KINDS)
    assert all(upload.rows(kind) == [] for kind in KINDS)
    for kind in KINDS:
        assert read_files([(f"{kind}.csv", template_csv(kind))]).errors == []


def test_rows_written_in_the_templates_layout_read_back_unchanged() -> None:
    rows = {
        PLACES: [
            {"code": "450999", "name": "示范县", "level": "county", "parent": None,
             "population": None, "has_clinic": False, "lat": None, "lon": None},
        ],
        ASSIGNMENTS: [
            {"id": "A1", "doctor": "D1", "kind": "patrol", "places": ["1", "2"],
             "start": "2026-01-05", "end": None,
             "slots": [{"weekday": 2, "slot": "pm"}]},
        ],
        USERS: [{"username": "d1", "role": "doctor", "doctor": "D1", "unit": None,
                 "active": True}],
    }  # fmt: skip
    upload = read_files([("export.xlsx", write_xlsx(rows))])
    assert upload.errors == []
    for kind, expected in rows.items():
        assert upload.rows(kind) == [
            {k: v for k, v in r.items() if v is not None} for r in expected
        ]
