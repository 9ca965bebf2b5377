"""Downloads of a county summary as CSV and XLSX (issue 5), both rendering
`server.summaries.figures.table_rows` and `about_rows`, so they show the same figures as the JSON
API and the pages.

- CSV: one UTF-8 file with a byte-order mark (so Excel in zh-CN reads it as UTF-8), CRLF
  line ends, and a first column `section` naming the table of each row: first the `about`
  rows (county, month, rule set and version, date of the figures, scope), then for each
  table its header row and its data rows, all with the table's name in `section`.
- XLSX (openpyxl): one sheet per table; each sheet starts with the same about block, then
  a blank row, then the table with a bold, frozen header row.

Text that a spreadsheet would run as a formula (starting with = + - @) is written as text:
in the CSV with a leading apostrophe (OWASP's advice against CSV injection), in the XLSX as
a string cell. No Flask here.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from server.summaries.tables import about_rows, table_rows

ABOUT = "about"
SECTION = "section"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A figure as CSV text: empty for none, TRUE/FALSE, numbers as Python writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(summary: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([SECTION])
    for row in about_rows(summary):
        writer.writerow([ABOUT, *map(csv_cell, row)])
    for name, rows in table_rows(summary).items():
        for row in rows:
            writer.writerow([name, *map(csv_cell, row)])
    return out.getvalue().encode("utf-8-sig")


def _number_format(header: str) -> str | None:
    if "rate" in header or "share" in header:
        return "0.0%"
    if "fee" in header:
        return "0.00"
    return None


def _put(sheet: Any, row: int, values: list[Any]) -> list[Any]:
    cells = []
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=column, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, whatever the text starts with
        cells.append(cell)
    return cells


def to_xlsx(summary: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)
    about = about_rows(summary)
    bold = Font(bold=True)
    for name, rows in table_rows(summary).items():
        sheet = workbook.create_sheet(title=name)
        for r, row in enumerate(about, start=1):
            _put(sheet, r, row)[0].font = bold
        header_row = len(about) + 2  # after a blank row
        formats = [_number_format(str(h)) for h in rows[0]]
        for r, row in enumerate(rows):
            for cell, value, number_format in zip(
                _put(sheet, header_row + r, row), row, formats, strict=True
            ):
                if r == 0:
                    cell.font = bold
                elif number_format and isinstance(value, int | float):
                    cell.number_format = number_format
        sheet.freeze_panes = sheet.cell(row=header_row + 1, column=3)
        for column in range(1, len(rows[0]) + 1):
            sheet.column_dimensions[get_column_letter(column)].width = 16 if column > 2 else 14
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
