"""County summaries over HTTP (issue 5): the JSON, the CSV and XLSX downloads, and the SVG
charts, for township reviewers and county admins (a doctor gets 403); a township outside
the caller's scope answers 404, a bad parameter 400, every error the one envelope
(server/api/errors.py). The figures are in server/summaries/figures.py, the files in
server/summaries/exports.py, the drawings in server/summaries/charts.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from server import summaries
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api.auth import current_actor, login_required
from server.api.context import rules_as_of, ruleset_name
from server.api.errors import ApiError
from server.api.parsing import int_arg
from server.extensions import db
from server.summaries import charts, exports
from sync.protocol import ErrorCode

bp = Blueprint("summaries", __name__, url_prefix="/api/v1")

readers = login_required(TOWNSHIP_REVIEWER, COUNTY_ADMIN)

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SVG_TYPE = "image/svg+xml; charset=utf-8"
CHARTS = ("compliance-trend", "duty-heatmap", "coverage-map")
VIEWS = ("raw", "approved")


def _required(name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise ApiError(
            400,
            ErrorCode.VALIDATION,
            f"the query parameter {name} is required",
            errors={name: ["is required"]},
        )
    return value


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.args.get(name) or default
    if value not in choices:
        raise ApiError(
            400,
            ErrorCode.VALIDATION,
            f"{name} must be one of {', '.join(choices)}, not {value!r}",
            errors={name: [f"must be one of {', '.join(choices)}"]},
        )
    return value


def _as_of() -> date:
    return rules_as_of()


def _summary() -> dict[str, Any]:
    month = _required("month")
    return summaries.county_summary(
        db.session,
        current_actor(),
        month=month,
        ruleset_name=ruleset_name(),
        township=request.args.get("township") or None,
        as_of=_as_of(),
    )


def download(body: bytes, mimetype: str, summary: dict[str, Any], extension: str) -> Response:
    name = f"zhuxun-{summary['county']['code']}-{summary['month']}"
    if summary["scope"]["township"] is not None:
        name += "-" + "-".join(summary["scope"]["township"])
    ascii_name = f"{name}.{extension}"
    readable = f"{summary['county']['name']}-{summary['month']}.{extension}"
    response = Response(body, mimetype=mimetype)
    # RFC 6266: an ASCII filename for every client, the readable (zh-CN) one as filename*.
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(readable)}"
    )
    return response


@bp.get("/summaries")
@readers
def summary_json() -> ResponseReturnValue:
    """The county summary of a month.
    ---
    get:
      summary: The county summary of a month, raw and reviewer-approved figures
      parameters:
        - {name: month, in: query, required: true, description: "YYYY-MM, 2000-01..2099-12", schema: {type: string, pattern: "^[0-9]{4}-[0-9]{2}$"}}
        - {name: township, in: query, description: "only this township (in the caller's scope)", schema: {type: string}}
      responses:
        "200":
          description: the summary (docs/summaries.md)
          content:
            application/json:
              schema: CountySummary

        "404": NoSuchTownshipOrCounty
    """
    return jsonify(_summary())


@bp.get("/summaries.csv")
@readers
def summary_csv() -> ResponseReturnValue:
    """The county summary as CSV.
    ---
    get:
      summary: The county summary as one CSV (UTF-8 with BOM, a section column)
      parameters:
        - {name: month, in: query, required: true, description: "YYYY-MM, 2000-01..2099-12", schema: {type: string, pattern: "^[0-9]{4}-[0-9]{2}$"}}
        - {name: township, in: query, description: "only this township (in the caller's scope)", schema: {type: string}}
      responses:
        "200":
          description: an attachment named after the county and month
          content:
            text/csv:
              schema:
                type: string
                format: binary

        "404": NoSuchTownshipOrCounty
    """
    summary = _summary()
    return download(exports.to_csv(summary), CSV_TYPE, summary, "csv")


@bp.get("/summaries.xlsx")
@readers
def summary_xlsx() -> ResponseReturnValue:
    """The county summary as XLSX.
    ---
    get:
      summary: The county summary as an XLSX workbook, one sheet per table
      parameters:
        - {name: month, in: query, required: true, description: "YYYY-MM, 2000-01..2099-12", schema: {type: string, pattern: "^[0-9]{4}-[0-9]{2}$"}}
        - {name: township, in: query, description: "only this township (in the caller's scope)", schema: {type: string}}
      responses:
        "200":
          description: an attachment named after the county and month
          content:
            application/vnd.openxmlformats-officedocument.spreadsheetml.sheet:
              schema:
                type: string
                format: binary

        "404": NoSuchTownshipOrCounty
    """
    summary = _summary()
    return download(exports.to_xlsx(summary), XLSX_TYPE, summary, "xlsx")


@bp.get("/summaries/charts/<name>.svg")
@readers
def chart(name: str) -> ResponseReturnValue:
    """A chart as SVG.
    ---
    get:
      summary: A chart drawn on the server as SVG
      parameters:
        - {name: name, in: path, required: true, schema: {type: string, enum: [compliance-trend, duty-heatmap, coverage-map]}}
        - {name: month, in: query, description: "coverage-map: the month, YYYY-MM", schema: {type: string, pattern: "^[0-9]{4}-[0-9]{2}$"}}
        - {name: township, in: query, description: "only this township (in the caller's scope)", schema: {type: string}}
        - {name: months, in: query, description: "compliance-trend: how many months up to today", schema: {type: integer, minimum: 1, maximum: 36}}
        - {name: doctor, in: query, description: "duty-heatmap: the doctor", schema: {type: string}}
        - {name: weeks, in: query, description: "duty-heatmap: how many weeks up to today", schema: {type: integer, minimum: 1, maximum: 104}}
        - {name: view, in: query, schema: {type: string, enum: [raw, approved]}}
        - {name: lang, in: query, schema: {type: string, enum: [zh, en]}}
      responses:
        "200":
          description: the chart
          content:
            image/svg+xml:
              schema:
                type: string

        "404": NoSuchTownshipOrCounty
    """
    if name not in CHARTS:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"no chart {name!r}; the charts are {', '.join(CHARTS)}"
        )
    labels = charts.LABELS_ZH if _choice("lang", ("zh", "en"), "zh") == "zh" else charts.LABELS_EN
    view = _choice("view", VIEWS, "raw")
    actor = current_actor()
    ruleset = ruleset_name()
    township = request.args.get("township") or None
    if name == "compliance-trend":
        months = summaries.months_until(_as_of(), int_arg("months", 6, 1, 36))
        trend = summaries.compliance_trend(
            db.session, actor, months, ruleset_name=ruleset, township=township, as_of=_as_of()
        )
        svg = charts.compliance_trend_svg(trend, labels=labels, view=view)
    elif name == "duty-heatmap":
        heatmap = summaries.duty_heatmap(
            db.session,
            actor,
            _required("doctor"),
            int_arg("weeks", 12, 1, summaries.MAX_HEATMAP_WEEKS),
            as_of=_as_of(),
        )
        svg = charts.duty_heatmap_svg(heatmap, labels=labels)
    else:
        summary = _summary()
        svg = charts.coverage_map_svg(summary["villages"], labels=labels, view=view)
    return Response(svg, mimetype=SVG_TYPE)
