"""The county pages: the month's summary with its tables, trend and coverage map, and the
CSV and XLSX downloads (the API's files). No domain logic: they call server/summaries/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    g,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.exceptions import NotFound

from server import summaries
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api import summaries as summaries_api
from server.api.context import rules_as_of, ruleset_name
from server.errors import InvalidInput
from server.extensions import db
from server.review import overview as review_overview
from server.summaries import charts, exports
from server.web.session import (
    bp,
    chart_labels,
    pages_for,
)

TREND_MONTHS = 6
VIEWS = ("raw", "approved")
DOWNLOADS = {
    "csv": (exports.to_csv, summaries_api.CSV_TYPE),
    "xlsx": (exports.to_xlsx, summaries_api.XLSX_TYPE),
}


# --- county --------------------------------------------------------------------------


def _summary_args() -> tuple[str, str | None]:
    month = request.args.get("month") or rules_as_of().strftime("%Y-%m")
    return month, request.args.get("township") or None


def _summary(month: str, township: str | None) -> dict[str, Any]:
    return summaries.county_summary(
        db.session,
        g.actor,
        month=month,
        ruleset_name=ruleset_name(),
        township=township,
        as_of=rules_as_of(),
    )


@bp.get("/county")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def county() -> ResponseReturnValue:
    """The month's summary: the tables the CSV and XLSX hold (`summaries.table_rows`), the
    compliance trend, the coverage map, and the downloads."""
    month, township = _summary_args()
    view = request.args.get("view") or "raw"
    if view not in VIEWS:
        raise InvalidInput(
            f"view must be raw or approved, not {view[:20]!r}", {"view": ["raw or approved"]}
        )
    summary = _summary(month, township)
    first, last = summaries.parse_month(month)
    as_of = rules_as_of()
    labels = chart_labels()
    trend = summaries.compliance_trend(
        db.session,
        g.actor,
        summaries.months_until(min(last, as_of), TREND_MONTHS),
        ruleset_name=ruleset_name(),
        township=township,
        as_of=as_of,
    )
    tables = summaries.table_rows(summary)
    previous = (first - timedelta(days=1)).strftime("%Y-%m")
    following = (last + timedelta(days=1)).strftime("%Y-%m")
    return render_template(
        "county.html",
        summary=summary,
        month=month,
        township=township,
        view=view,
        townships=review_overview.townships(db.session, g.actor),
        about=summaries.about_rows(summary),
        tables=tables,
        # The SVG builders escape every text they draw (server/summaries/charts.py).
        trend_svg=Markup(charts.compliance_trend_svg(trend, labels=labels, view=view)),  # noqa: S704
        map_svg=Markup(  # noqa: S704
            charts.coverage_map_svg(summary["villages"], labels=labels, view=view)
        ),
        previous=previous,
        following=following if last < as_of else None,
    )


@bp.get("/county/summary.<extension>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def county_download(extension: str) -> ResponseReturnValue:
    """The same files as /api/v1/summaries.csv and .xlsx, for a signed-in page session."""
    if extension not in DOWNLOADS:
        raise NotFound(f"no download .{extension[:10]}; there are .csv and .xlsx")
    month, township = _summary_args()
    summary = _summary(month, township)
    render, mimetype = DOWNLOADS[extension]
    return summaries_api.download(render(summary), mimetype, summary, extension)
