"""`evaluate SCENARIO.json --as-of DATE`: the rules as a click command. The server registers
it with `cli.add_command(evaluate)`; library errors become click errors, never tracebacks."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from rules.engine import evaluate as evaluate_scenario
from rules.flags import Flag
from rules.ruleset import DEFAULT_PRESET, PRESETS, RuleSetError, load_ruleset
from rules.scenario import ScenarioError, load_scenario
from rules.workdays import CalendarFileError, load_year_schedule

CSV_FIELDS = ("key", "rule", "status", "subject_type", "subject_id", "period", "measured",
              "required", "evidence", "ruleset", "calendar", "explanation_en", "explanation_zh")  # fmt: skip


class DateParam(click.ParamType):
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date YYYY-MM-DD", param, ctx)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise click.ClickException(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise click.ClickException(
            f"{path}: not valid JSON: line {error.lineno} column {error.colno}: {error.msg}"
        ) from None


def _table(flags: list[Flag]) -> str:
    rows = [("status", "rule", "subject", "period", "measured", "required")]
    rows += [
        (f.status, f.rule, f"{f.subject_type}:{f.subject_id}", f.period, str(f.measured), str(f.required))
        for f in flags
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append(f"{len(flags)} flag(s)")
    return "\n".join(lines)


def _csv(flags: list[Flag]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for f in flags:
        writer.writerow(
            [f.key, f.rule, f.status, f.subject_type, f.subject_id, f.period, f.measured,
             f.required, " ".join(f.evidence), f"{f.ruleset[0]}@{f.ruleset[1]}", f.calendar,
             f.explanation_en, f.explanation_zh]
        )  # fmt: skip
    return out.getvalue().rstrip("\n")


@click.command("evaluate")
@click.argument("scenario", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--as-of",
    "as_of",
    type=DateParam(),
    required=True,
    help="Evaluation date: data through the end of this day.",
)
@click.option(
    "--ruleset",
    default=DEFAULT_PRESET,
    show_default=True,
    metavar="NAME|FILE",
    help=f"A preset ({', '.join(PRESETS)}) or a county rule set JSON file.",
)
@click.option(
    "--calendar",
    "calendars",
    multiple=True,
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A year's official schedule {year, holidays, workdays}; wins over the library.",
)
@click.option("--format", "fmt", type=click.Choice(["json", "table", "csv"]), default="json",
              show_default=True)  # fmt: skip
def evaluate(
    scenario: Path, as_of: date, ruleset: str, calendars: tuple[Path, ...], fmt: str
) -> None:
    """Evaluate SCENARIO.json against a rule set and print the flags."""
    try:
        rules = load_ruleset(ruleset)
    except RuleSetError as error:
        raise click.BadParameter(str(error), param_hint="'--ruleset'") from None
    if calendars:
        try:
            rules = rules.with_calendar_overrides(tuple(load_year_schedule(p) for p in calendars))
        except CalendarFileError as error:
            raise click.BadParameter(str(error), param_hint="'--calendar'") from None
    if not scenario.is_file():
        raise click.ClickException(f"{scenario}: no such scenario file")
    try:
        data = load_scenario(read_json(scenario))
    except ScenarioError as error:
        raise click.ClickException(f"{scenario}: invalid scenario: {error}") from None
    flags = evaluate_scenario(data, as_of=as_of, ruleset=rules)
    if fmt == "json":
        click.echo(
            json.dumps({"flags": [f.to_dict() for f in flags]}, ensure_ascii=False, indent=2)
        )
    elif fmt == "table":
        click.echo(_table(flags))
    else:
        click.echo(_csv(flags))


if __name__ == "__main__":
    evaluate()
