"""A summary as tables, sheet name → [header, *rows]: what the CSV, the XLSX and the web
pages all render, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.summaries.figures import TOWNSHIP_FIGURES, VILLAGE_FIGURES
from server.summaries.tallies import (
    FLAG_STATES,
)

Tables = dict[str, list[list[Any]]]
RAW_LABEL, APPROVED_LABEL = "原始 raw", "审核 approved"


# --- tables: what the CSV, the XLSX and the pages render ------------------------------


def about_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """The header block of every download: county, month, rule set and version, the date
    of the figures, and the scope."""
    scope = summary["scope"]["township"]
    return [
        ["县 county", summary["county"]["code"], summary["county"]["name"]],
        ["月份 month", summary["month"]],
        ["规则集 rule set", summary["ruleset"]["name"], summary["ruleset"]["version"]],
        ["数据截至 figures as of", summary["figures_as_of"]],
        ["范围 scope", "全县 whole county" if scope is None else ", ".join(scope)],
    ]


def _figure_headers(figures: Iterable[tuple[str, str, str]]) -> list[str]:
    return [f"{zh} {en} ({view})" for _, zh, en in figures for view in (RAW_LABEL, APPROVED_LABEL)]


TOTAL_NAME = "合计 total"


def table_rows(summary: dict[str, Any]) -> Tables:
    """The summary as tables, sheet name → [header, *rows]: townships (with the totals as
    the last row), compliance per weekly rule, flags per rule and state, villages."""
    units = [(row["code"], row["name"], row) for row in summary["townships"]] + [
        (summary["totals"]["code"], TOTAL_NAME, summary["totals"])
    ]
    townships: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", *_figure_headers(TOWNSHIP_FIGURES)]
    ]
    compliance: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", "规则 rule"]
        + [
            f"{zh} {en} ({view})"
            for zh, en in (
                ("已评周数", "weeks judged"),
                ("达标周数", "weeks met"),
                ("达标率", "rate"),
            )
            for view in (RAW_LABEL, APPROVED_LABEL)
        ]
    ]
    flags: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", "规则 rule"]
        + [
            f"{zh} {en} ({view})"
            for zh, en in (("未处理", "open"), ("已说明", "excused"), ("已解决", "resolved"))
            for view in (RAW_LABEL, APPROVED_LABEL)
        ]
    ]
    for code, name, row in units:
        townships.append(
            [code, name]
            + [
                row["figures"][key][view]
                for key, _, _ in TOWNSHIP_FIGURES
                for view in ("raw", "approved")
            ]
        )
        for rule, figure in row["compliance"].items():
            compliance.append(
                [code, name, rule]
                + [
                    figure[key][view]
                    for key in ("judged", "met", "rate")
                    for view in ("raw", "approved")
                ]
            )
        for rule, by_state in row["flags"].items():
            flags.append(
                [code, name, rule]
                + [by_state[state][view] for state in FLAG_STATES for view in ("raw", "approved")]
            )
    villages: list[list[Any]] = [
        [
            "村代码 village",
            "名称 name",
            "乡镇 township",
            "有村卫生室 has clinic",
            "人口 population",
            "纬度 lat",
            "经度 lon",
            *_figure_headers(VILLAGE_FIGURES),
        ]
    ]
    for v in summary["villages"]:
        villages.append(
            [
                v["code"],
                v["name"],
                v["township"],
                v["has_clinic"],
                v["population"],
                v["lat"],
                v["lon"],
            ]
            + [
                v["figures"][key][view]
                for key, _, _ in VILLAGE_FIGURES
                for view in ("raw", "approved")
            ]
        )
    return {"townships": townships, "compliance": compliance, "flags": flags, "villages": villages}
