"""Charts of the county summaries as SVG strings, drawn on the server (issue 5: "charts people
would rather look at than read ... rendered server-side, no CDN"): the compliance trend per
township, a doctor's duty-day heatmap (weeks x days) and village coverage on a simple map of
positions.

Pure string builders over the data of `server.summaries.figures` (county_summary, compliance_trend,
duty_heatmap): no Flask, no JavaScript, no external resource; every piece of text is
escaped. Labels come from a `labels` mapping (LABELS_EN, LABELS_ZH, or a caller's own),
merged over the English defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif"

LABELS_EN: dict[str, str] = {
    "trend_title": "Duty compliance per township",
    "trend_axis": "weeks meeting the weekly duty rules",
    "total": "County total",
    "no_data": "no weeks judged",
    "heatmap_title": "Duty sessions per day",
    "sessions": "sessions",
    "hours": "h on site",
    "patients": "patients",
    "approved": "approved",
    "future": "not yet",
    "weekday_1": "Mon",
    "weekday_2": "Tue",
    "weekday_3": "Wed",
    "weekday_4": "Thu",
    "weekday_5": "Fri",
    "weekday_6": "Sat",
    "weekday_7": "Sun",
    "map_title": "Village coverage",
    "covered": "covered",
    "uncovered": "not covered",
    "not_required": "own clinic (not required)",
    "not_judged": "not judged",
    "days_since": "days since last visit",
    "never": "never visited",
    "no_position": "villages without a position (not shown)",
    "km": "km",
}
LABELS_ZH: dict[str, str] = {
    "trend_title": "各乡镇在岗达标率",
    "trend_axis": "达到每周在岗要求的周数占比",
    "total": "全县合计",
    "no_data": "无已评周",
    "heatmap_title": "每日在岗次数",
    "sessions": "次",
    "hours": "小时",
    "patients": "人次",
    "approved": "已审核",
    "future": "未到",
    "weekday_1": "一",
    "weekday_2": "二",
    "weekday_3": "三",
    "weekday_4": "四",
    "weekday_5": "五",
    "weekday_6": "六",
    "weekday_7": "日",
    "map_title": "村覆盖情况",
    "covered": "已覆盖",
    "uncovered": "未覆盖",
    "not_required": "有村卫生室（无需覆盖）",
    "not_judged": "未评",
    "days_since": "距上次诊疗天数",
    "never": "从未诊疗",
    "no_position": "个村无坐标（未显示）",
    "km": "公里",
}

# Colour-blind-safe categorical palette (Okabe-Ito), then a few more.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
)
COVERAGE_COLOURS = {
    "covered": "#009E73",
    "uncovered": "#D55E00",
    "not_required": "#9FB4C7",
    "not_judged": "#DDDDDD",
}
# Heatmap: 0, 1, 2, 3 or more sessions a day.
HEAT_COLOURS = ("#EEEEEE", "#C7E9C0", "#74C476", "#238B45")


def _t(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**LABELS_EN, **(labels or {})}


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" class="chart {css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_t(title)}" '
        f'font-family="{FONT}" font-size="12">'
        f"<title>{_t(title)}</title>"
        f'<rect width="{width}" height="{height}" fill="#FFFFFF"/>' + "".join(body) + "</svg>"
    )


# --- compliance trend --------------------------------------------------------------------


def compliance_trend_svg(
    trend: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    view: str = "raw",
    width: int = 760,
    height: int = 360,
) -> str:
    """A line per township (and a dashed one for the total) of the share of judged duty
    weeks that met the weekly rules, month by month; `view` is raw or approved."""
    text = _labels(labels)
    months: Sequence[str] = trend["months"]
    series = [*trend["townships"], {**trend["totals"], "name": text["total"], "total": True}]
    left, right, top, bottom = 48, 200, 36, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(months) - 1, 1)

    def x(i: int) -> float:
        return left + (i * step if len(months) > 1 else plot_w / 2)

    # The y axis starts at a round 10% below the lowest rate, so that differences between
    # townships in the high nineties stay visible; it always ends at 100%.
    rates = [p["rate"][view] for s in series for p in s["points"] if p["rate"][view] is not None]
    floor = max(0.0, math.floor((min(rates, default=0.0) - 0.02) * 10) / 10)

    def y(rate: float) -> float:
        return top + plot_h * (1 - (rate - floor) / (1 - floor))

    body = [
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{_t(text["trend_title"])}</text>'
    ]
    for tick in range(5):
        pct = round((floor + (1 - floor) * tick / 4) * 100, 1)
        gy = y(pct / 100)
        body.append(
            f'<line class="grid" x1="{left}" y1="{gy:.1f}" x2="{left + plot_w}" y2="{gy:.1f}" '
            f'stroke="#DDDDDD"/>'
            f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end" fill="#555555">{_num(pct)}%</text>'
        )
    for i, month in enumerate(months):
        body.append(
            f'<text class="month" x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
            f'fill="#555555">{_t(month)}</text>'
        )
    body.append(
        f'<text x="{left}" y="{height - 6}" fill="#555555" font-size="11">'
        f"{_t(text['trend_axis'])} ({_t(view)})</text>"
    )
    for n, s in enumerate(series):
        total = bool(s.get("total"))
        colour = "#333333" if total else PALETTE[n % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if total else ""
        width_px = 3 if total else 2
        points = [(i, p["rate"][view]) for i, p in enumerate(s["points"])]
        body.append(f'<g class="series{" total" if total else ""}" data-code="{_t(s["code"])}">')
        run: list[str] = []
        for i, rate in [*points, (len(points), None)]:
            if rate is None:
                if len(run) > 1:
                    body.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="{width_px}"{dash} '
                        f'points="{" ".join(run)}"/>'
                    )
                run = []
                continue
            run.append(f"{x(i):.1f},{y(rate):.1f}")
        for i, rate in points:
            month = months[i]
            if rate is None:
                continue
            body.append(
                f'<circle class="point" cx="{x(i):.1f}" cy="{y(rate):.1f}" r="3.5" '
                f'fill="{colour}" data-month="{_t(month)}" data-rate="{rate}">'
                f"<title>{_t(s['name'])} {_t(month)}: {_num(rate * 100)}%</title></circle>"
            )
        body.append("</g>")
        ly = top + 14 + n * 18
        lx = left + plot_w + 16
        body.append(
            f'<g class="legend-item"><line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="{width_px}"{dash}/>'
            f'<text x="{lx + 28}" y="{ly}">{_t(s["name"])}</text></g>'
        )
    return _svg(width, height, text["trend_title"], body, "compliance-trend")


# --- duty heatmap --------------------------------------------------------------------------


def _heat(sessions: int) -> str:
    return HEAT_COLOURS[min(max(sessions, 0), len(HEAT_COLOURS) - 1)]


def duty_heatmap_svg(
    heatmap: Mapping[str, Any], *, labels: Mapping[str, str] | None = None, cell: int = 22
) -> str:
    """A doctor's weeks (rows) x days Monday to Sunday (columns), each day coloured by its
    visit records (duty sessions): none, 1, 2, 3 or more; approved weeks are ticked."""
    text = _labels(labels)
    weeks = heatmap["weeks"]
    doctor = heatmap["doctor"]
    left, top = 84, 56
    width = left + 7 * (cell + 2) + 110
    height = top + len(weeks) * (cell + 2) + 60
    title = f"{text['heatmap_title']}: {doctor.get('name') or ''} ({doctor['id']})"
    body = [f'<text x="8" y="20" font-size="14" font-weight="bold">{_t(title)}</text>']
    for d in range(7):
        cx = left + d * (cell + 2) + cell / 2
        body.append(
            f'<text class="weekday" x="{cx:.1f}" y="{top - 8}" text-anchor="middle" '
            f'fill="#555555">{_t(text[f"weekday_{d + 1}"])}</text>'
        )
    for r, week in enumerate(weeks):
        ry = top + r * (cell + 2)
        body.append(
            f'<g class="week" data-week="{_t(week["week"])}">'
            f'<text x="{left - 8}" y="{ry + cell / 2 + 4:.1f}" text-anchor="end" '
            f'fill="#555555">{_t(week["week"])}</text>'
        )
        for d, day in enumerate(week["days"]):
            dx = left + d * (cell + 2)
            if day.get("future"):
                body.append(
                    f'<rect class="day future" x="{dx}" y="{ry}" width="{cell}" height="{cell}" '
                    f'fill="#FFFFFF" stroke="#CCCCCC" stroke-dasharray="2 2" '
                    f'data-date="{_t(day["date"])}"><title>{_t(day["date"])}: '
                    f"{_t(text['future'])}</title></rect>"
                )
                continue
            tip = (
                f"{day['date']}: {day['sessions']} {text['sessions']}, "
                f"{_num(day['hours'])} {text['hours']}, {day['patients']} {text['patients']}"
            )
            body.append(
                f'<rect class="day" x="{dx}" y="{ry}" width="{cell}" height="{cell}" rx="2" '
                f'fill="{_heat(day["sessions"])}" data-date="{_t(day["date"])}" '
                f'data-sessions="{int(day["sessions"])}"><title>{_t(tip)}</title></rect>'
            )
        if week.get("approved"):
            body.append(
                f'<text class="approved" x="{left + 7 * (cell + 2) + 6}" '
                f'y="{ry + cell / 2 + 4:.1f}" fill="#009E73">✓ {_t(text["approved"])}</text>'
            )
        body.append("</g>")
    ly = top + len(weeks) * (cell + 2) + 12
    for n, colour in enumerate(HEAT_COLOURS):
        lx = left + (n % 2) * 96
        if n % 2 == 0 and n:
            ly += 20
        shown = f"{n}+" if n == len(HEAT_COLOURS) - 1 else str(n)
        body.append(
            f'<g class="legend-item"><rect x="{lx}" y="{ly}" width="14" height="14" '
            f'fill="{colour}"/><text x="{lx + 18}" y="{ly + 11}">{_t(shown)} '
            f"{_t(text['sessions'])}</text></g>"
        )
    return _svg(width, height, title, body, "duty-heatmap")


# --- coverage map --------------------------------------------------------------------------


def coverage_map_svg(
    villages: Sequence[Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
    view: str = "raw",
    width: int = 640,
    height: int = 480,
) -> str:
    """The villages of a summary (`county_summary(...)["villages"]`) placed by latitude and
    longitude (equirectangular, true to scale at the middle latitude), coloured by coverage
    status, with a legend and a scale bar."""
    text = _labels(labels)
    placed = [v for v in villages if v.get("lat") is not None and v.get("lon") is not None]
    missing = len(villages) - len(placed)
    left, top, legend_h = 16, 36, 72
    plot_w, plot_h = width - 2 * left, height - top - legend_h
    body = [
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{_t(text["map_title"])}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#F7F7F2" '
        f'stroke="#CCCCCC"/>',
    ]
    if placed:
        lats = [float(v["lat"]) for v in placed]
        lons = [float(v["lon"]) for v in placed]
        squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
        span_x = max((max(lons) - min(lons)) * squeeze, 1e-6)
        span_y = max(max(lats) - min(lats), 1e-6)
        pad = 16
        scale = min((plot_w - 2 * pad) / span_x, (plot_h - 2 * pad) / span_y)
        off_x = left + (plot_w - span_x * scale) / 2
        off_y = top + (plot_h - span_y * scale) / 2
        for v in sorted(placed, key=lambda v: v["code"]):
            px = off_x + (float(v["lon"]) - min(lons)) * squeeze * scale
            py = off_y + (max(lats) - float(v["lat"])) * scale
            status = v["figures"]["coverage"][view]
            since = v["figures"]["days_since_last_visit"][view]
            seen = text["never"] if since is None else f"{text['days_since']} {since}"
            tip = f"{v.get('name') or ''} ({v['code']}): {text.get(status, status)}; {seen}"
            body.append(
                f'<circle class="village status-{_t(status)}" cx="{px:.1f}" cy="{py:.1f}" r="6" '
                f'fill="{COVERAGE_COLOURS.get(status, "#DDDDDD")}" stroke="#333333" '
                f'stroke-width="0.6" data-code="{_t(v["code"])}" data-status="{_t(status)}">'
                f"<title>{_t(tip)}</title></circle>"
            )
        # Scale bar: a round number of km near a quarter of the plot width.
        km_per_px = 111.32 / scale
        target = km_per_px * plot_w / 4
        bar_km = next((k for k in (0.5, 1, 2, 5, 10, 20, 50, 100) if k >= target * 0.6), target)
        bar_px = bar_km / km_per_px
        sy = top + plot_h - 10
        body.append(
            f'<g class="scale"><line x1="{left + 10}" y1="{sy}" x2="{left + 10 + bar_px:.1f}" '
            f'y2="{sy}" stroke="#333333" stroke-width="2"/><text x="{left + 10}" y="{sy - 5}">'
            f"{_t(_num(bar_km))} {_t(text['km'])}</text></g>"
        )
    counts: dict[str, int] = {}
    for v in villages:
        status = v["figures"]["coverage"][view]
        counts[status] = counts.get(status, 0) + 1
    ly = top + plot_h + 20
    for n, (status, colour) in enumerate(COVERAGE_COLOURS.items()):
        lx = left + (n % 2) * (plot_w // 2)
        row_y = ly + (n // 2) * 20
        body.append(
            f'<g class="legend-item" data-status="{status}"><circle cx="{lx + 7}" '
            f'cy="{row_y - 4}" r="6" fill="{colour}" stroke="#333333" stroke-width="0.6"/>'
            f'<text x="{lx + 18}" y="{row_y}">{_t(text[status])}: {counts.get(status, 0)}</text>'
            "</g>"
        )
    if missing:
        body.append(
            f'<text class="no-position" x="{left}" y="{height - 6}" fill="#555555">'
            f"{missing} {_t(text['no_position'])}</text>"
        )
    return _svg(width, height, text["map_title"], body, "coverage-map")
