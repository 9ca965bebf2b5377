"""What the API and the pages read from the application: the day the rules judge as of
and the re-evaluation after a write, bound to the app's settings (ZHUXUN_RULES_AS_OF,
ZHUXUN_RULESET). The domain functions themselves are in server/flags.py."""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy.orm import Session

from server import flags
from server.records.sql_store import WrittenRecord


def rules_as_of() -> date:
    return flags.rules_as_of(current_app.config.get("ZHUXUN_RULES_AS_OF"))


def ruleset_name() -> str:
    return str(current_app.config["ZHUXUN_RULESET"])


def reevaluate_flags(session: Session, rows: list[WrittenRecord]) -> None:
    """`flags.reevaluate_after_push` with the app's ruleset and date."""
    flags.reevaluate_after_push(session, rows, ruleset=ruleset_name(), as_of=rules_as_of())
