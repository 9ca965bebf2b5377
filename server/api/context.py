"""What the API and the pages read from the application: the day the rules judge as of
and how the flags a write makes stale are judged, bound to the app's settings
(ZHUXUN_RULES_AS_OF, ZHUXUN_RULESET, ZHUXUN_EVALUATION). The domain functions themselves are in server/flags.py."""

from __future__ import annotations

from datetime import date

from flask import current_app

from server import evaluation_queue, flags


def rules_as_of() -> date:
    return flags.rules_as_of(current_app.config.get("ZHUXUN_RULES_AS_OF"))


def ruleset_name() -> str:
    return str(current_app.config["ZHUXUN_RULESET"])


def evaluation() -> evaluation_queue.Settings:
    """How the flags writes make stale are judged, from the app's settings
    (ZHUXUN_RULESET, ZHUXUN_RULES_AS_OF, ZHUXUN_EVALUATION)."""
    return evaluation_queue.settings_from(current_app.config)


def live() -> bool:
    """Whether the rules judge live, as of today while it lasts (no ZHUXUN_RULES_AS_OF)."""
    return not current_app.config.get("ZHUXUN_RULES_AS_OF")
