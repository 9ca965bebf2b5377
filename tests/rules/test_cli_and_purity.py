import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rules.cli import evaluate
from tests.rules.builders import default_places, make_assignment, make_doctor, make_visit


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "scenario.json"
    obj = {"places": default_places(), "doctors": [make_doctor()], "assignments": [make_assignment()],
           "visits": [make_visit("2026-03-02")]}  # fmt: skip
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def run(*args):
    return CliRunner().invoke(evaluate, [str(a) for a in args])


def test_json_output_lists_flags(scenario_file):
    result = run(scenario_file, "--as-of", "2026-03-08")
    assert result.exit_code == 0, result.output
    flags = json.loads(result.output)["flags"]
    week = next(f for f in flags if f["rule"] == "posting.days_per_week")
    assert week["period"] == "2026-W10" and week["measured"] == 1 and week["required"] == 5
    assert set(week["explanation"]) == {"zh", "en"}
    assert week["ruleset"] == {"name": "guangxi", "version": "2023.53"}


def test_table_and_csv_output(scenario_file):
    table = run(scenario_file, "--as-of", "2026-03-08", "--format", "table")
    assert (
        table.exit_code == 0
        and "posting.days_per_week" in table.output
        and "flag(s)" in table.output
    )
    out = run(scenario_file, "--as-of", "2026-03-08", "--format", "csv", "--ruleset", "national")
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert rows and rows[0]["ruleset"].startswith("national@")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json", "--as-of", "2026-03-08"], "no such scenario file"),
        (["{scenario}", "--as-of", "8 March"], "is not a date"),
        (["{scenario}", "--as-of", "2026-03-08", "--ruleset", "atlantis"], "unknown rule set"),
        (["{bad_json}", "--as-of", "2026-03-08"], "not valid JSON: line 1"),
        (["{bad_record}", "--as-of", "2026-03-08"], "visits[0].check_in"),
    ],
)
def test_bad_input_gives_a_clear_error_and_no_traceback(tmp_path, scenario_file, args, message):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    bad_record = tmp_path / "record.json"
    bad_record.write_text(json.dumps({"places": default_places(), "doctors": [make_doctor()],
                                      "visits": [make_visit() | {"check_in": "yesterday"}]}))  # fmt: skip
    paths = {"scenario": scenario_file, "bad_json": bad_json, "bad_record": bad_record}
    result = run(*[a.format(**paths) for a in args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_importing_rules_loads_neither_flask_nor_a_database_driver():
    code = (
        "import sys, rules, rules.cli, rules.counts\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'sqlalchemy', 'flask_sqlalchemy', 'psycopg', 'sqlite3', 'sqlite_utils', 'marshmallow')]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_command_is_a_click_command_the_server_can_register():
    import click

    assert isinstance(evaluate, click.Command) and evaluate.name == "evaluate"


def test_a_calendar_file_on_the_command_line_wins_and_is_named_in_the_flags(tmp_path):
    scenario = tmp_path / "s.json"
    assignment = make_assignment(start="2031-01-06", end="2031-12-31")
    scenario.write_text(
        json.dumps(
            {"places": default_places(), "doctors": [make_doctor()], "assignments": [assignment]}
        )
    )
    calendar = tmp_path / "cal-2031.json"
    calendar.write_text(json.dumps({"year": 2031, "holidays": ["2031-01-06"], "workdays": []}))
    plain = json.loads(run(scenario, "--as-of", "2031-01-12").output)["flags"]
    week = next(
        f for f in plain if f["period"] == "2031-W02" and f["rule"] == "posting.days_per_week"
    )
    assert (week["required"], week["calendar"]) == (5, "fallback:weekdays")
    result = run(scenario, "--as-of", "2031-01-12", "--calendar", calendar)
    week = next(
        f
        for f in json.loads(result.output)["flags"]
        if f["period"] == "2031-W02" and f["rule"] == "posting.days_per_week"
    )
    assert (week["required"], week["calendar"]) == (4, "override:cal-2031.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"year": "soon"}))
    bad = run(scenario, "--as-of", "2031-01-12", "--calendar", broken)
    assert bad.exit_code == 2 and "year: expected an integer" in bad.output


def test_a_county_rule_set_file_with_a_typo_is_reported(tmp_path, scenario_file):
    county = tmp_path / "county.json"
    county.write_text(
        json.dumps(
            {"name": "c", "versions": [{"rules": {"posting.days_per_week": {"min_dayz": 4}}}]}
        )
    )
    result = run(scenario_file, "--as-of", "2026-03-08", "--ruleset", county)
    assert result.exit_code == 2 and "min_dayz: unknown parameter" in result.output
