"""The township review pages: the weeks overview, a doctor's week with its heatmap and
audit trail, and the decisions (approve, send back, excuse, leave), each an HTML form that
posts and redirects back. No domain logic: they call server/review/, as the API does."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from rules.periods import week_label, week_start
from server import summaries
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api.context import evaluation, rules_as_of
from server.errors import InvalidInput
from server.extensions import db
from server.review import overview as review_overview
from server.review import workflow as review
from server.summaries import charts
from server.web.session import (
    _,
    bp,
    chart_labels,
    pages_for,
)
from sync.values import ascii_digits

DEFAULT_WEEKS = 8
HEATMAP_WEEKS = 12


# --- review ------------------------------------------------------------------------


def _weeks_arg() -> int:
    raw = request.args.get("weeks", "")
    if not raw:
        return DEFAULT_WEEKS
    if not ascii_digits(raw, max_digits=6):  # not str.isdigit: "²" is a digit to it
        raise InvalidInput(
            f"weeks must be a whole number, not {raw[:20]!r}", {"weeks": ["must be a number"]}
        )
    return int(raw)


def _form_fields() -> dict[str, str]:
    """The non-blank fields of the posted form: an empty optional box means 'none'."""
    return {key: value for key, value in request.form.items() if value.strip()}


def _back_to_week(doctor: str, week: str) -> ResponseReturnValue:
    return redirect(url_for(".review_week", doctor=doctor, week=week))


@bp.get("/review")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def review_index() -> ResponseReturnValue:
    until_label = request.args.get("until") or week_label(week_start(rules_as_of()))
    until, _sunday = review.parse_week(until_label)
    count = _weeks_arg()
    weeks = review_overview.recent_weeks(until, count)
    township = request.args.get("township") or None
    overview = review_overview.weeks_overview(db.session, g.actor, weeks, township=township)
    current, _sunday = review.parse_week(week_label(week_start(rules_as_of())))
    return render_template(
        "review_index.html",
        overview=overview,
        count=count,
        township=township,
        older=week_label(week_start(until - timedelta(weeks=count))),
        newer=week_label(week_start(min(until + timedelta(weeks=count), current)))
        if until < current
        else None,
    )


@bp.get("/review/<doctor>/<week>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def review_week(doctor: str, week: str) -> ResponseReturnValue:
    calendar = review.week_calendar(db.session, g.actor, doctor, week)
    trail = review_overview.week_audit(db.session, g.actor, calendar)
    return render_template(
        "review_week.html", cal=calendar, trail=trail, heatmap=_heatmap(doctor, week)
    )


def _heatmap(doctor: str, week: str) -> Markup:
    """The doctor's duty-day heatmap (server/summaries/charts.py) of the weeks up to this one."""
    _monday, sunday = review.parse_week(week)
    data = summaries.duty_heatmap(
        db.session, g.actor, doctor, HEATMAP_WEEKS, as_of=min(sunday, rules_as_of())
    )
    # The SVG builder escapes every text it draws (server/summaries/charts.py).
    return Markup(charts.duty_heatmap_svg(data, labels=chart_labels()))  # noqa: S704


@bp.post("/review/<doctor>/<week>/approve")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def approve_week(doctor: str, week: str) -> ResponseReturnValue:
    reason = review.text_field(_form_fields(), "reason", required=False)
    review.approve_week(db.session, g.actor, doctor, week, reason=reason)
    flash(_("Week %(week)s approved and locked.", week=week), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/send-back")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def send_back(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    visit = review.text_field(fields, "visit")
    comment = review.text_field(fields, "comment")
    assert visit is not None and comment is not None
    review.send_back(db.session, g.actor, visit, comment=comment)
    flash(_("The visit was sent back to the doctor with your comment."), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/excuse")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def excuse_flag(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    key = review.text_field(fields, "flag")
    reason = review.text_field(fields, "reason")
    assert key is not None and reason is not None
    review.excuse_flag(db.session, g.actor, key, reason=reason)
    flash(_("The flag was excused."), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/leave")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def decide_leave(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    leave = review.text_field(fields, "leave")
    decision = fields.get("decision", "")
    assert leave is not None
    reason = review.text_field(fields, "reason", required=decision == "refuse")
    review.decide_leave(
        db.session, g.actor, leave, decision, reason=reason, evaluation=evaluation()
    )
    flash(_("Leave approved.") if decision == "approve" else _("Leave refused."), "ok")
    return _back_to_week(doctor, week)
