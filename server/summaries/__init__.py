"""County summaries (RULES.md, "Summaries the county bureau pulls"; docs/summaries.md), by
concept: the periods asked for (periods.py), the county loaded once per call (county.py),
the monthly tallies (tallies.py), the month's summary (figures.py), the compliance trend
(trend.py), the duty heatmap (heatmap.py), the tables every download renders (tables.py),
and the SVG charts (charts.py) and CSV/XLSX files (exports.py). No Flask.

The names below are what callers use; `from server import summaries`."""

from server.summaries.figures import TOWNSHIP_FIGURES, VILLAGE_FIGURES, county_summary
from server.summaries.heatmap import duty_heatmap
from server.summaries.periods import MAX_HEATMAP_WEEKS, MAX_TREND_MONTHS, months_until, parse_month
from server.summaries.tables import about_rows, table_rows
from server.summaries.trend import compliance_trend

__all__ = [
    "MAX_HEATMAP_WEEKS",
    "MAX_TREND_MONTHS",
    "TOWNSHIP_FIGURES",
    "VILLAGE_FIGURES",
    "about_rows",
    "compliance_trend",
    "county_summary",
    "duty_heatmap",
    "months_until",
    "parse_month",
    "table_rows",
]
