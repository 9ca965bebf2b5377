"""Zhuxun's duty rules: rule sets as data, a holiday-aware workday calendar, and a pure
evaluation from plain data to flags. Imports neither Flask nor a database driver."""

from rules.engine import Index, evaluate
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import Assignment, Doctor, Leave, Place, Scenario, Slot, Training, Visit
from rules.ruleset import (
    DEFAULT_PRESET,
    PRESETS,
    RULE_IDS,
    RuleSet,
    RuleSetError,
    RuleSetVersion,
    load_ruleset,
    parse_ruleset,
    preset,
)
from rules.scenario import ScenarioError, load_scenario
from rules.workdays import WorkCalendar

__all__ = [
    "AT_RISK",
    "DEFAULT_PRESET",
    "PRESETS",
    "RULE_IDS",
    "VIOLATION",
    "Assignment",
    "Doctor",
    "Flag",
    "Index",
    "Leave",
    "Place",
    "RuleSet",
    "RuleSetError",
    "RuleSetVersion",
    "Scenario",
    "ScenarioError",
    "Slot",
    "Training",
    "Visit",
    "WorkCalendar",
    "evaluate",
    "load_ruleset",
    "load_scenario",
    "parse_ruleset",
    "preset",
]
