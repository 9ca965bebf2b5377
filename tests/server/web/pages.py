"""Helpers for the page tests: a signed-in page client over Flask's test client (no
JavaScript, plain form posts, like a phone with scripts off), and the seeded review week."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from tests.builders import PASSWORD, VILLAGE_A1, make_change, visit_data

AS_OF = "2026-01-11"  # the Sunday that ends 2026-W02, the first week of D2's posting
WEEK = "2026-W02"
POSTING_WEEK_KEY = "posting.days_per_week|assignment|A2|2026-W02"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has a form with a CSRF token"
    return unescape(match[1])


class Pages:
    """A browser without JavaScript: GETs pages, posts their forms with the page's token."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> Any:
        answer = self.client.get(path, **kwargs)
        if answer.mimetype == "text/html":
            found = _TOKEN.search(answer.get_data(as_text=True))
            if found:
                self.token = unescape(found[1])
        return answer

    def post(self, path: str, data: dict[str, Any], *, token: bool = True, **kwargs: Any) -> Any:
        if token:
            if self.token is None:
                self.get("/login")
            data = {"csrf_token": self.token, **data}
        return self.client.post(path, data=data, **kwargs)

    def login(self, username: str, password: str = PASSWORD) -> Any:
        self.get("/login")
        answer = self.post("/login", {"username": username, "password": password})
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return answer


def text(answer: Any) -> str:
    return answer.get_data(as_text=True)


def api_token(client: Any, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def push(client: Any, username: str, *changes: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/sync/push",
        json={"device_id": f"dev-{username}", "batch_id": make_change()["id"], "changes": changes},
        headers=api_token(client, username),
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def posting_day(day: int, **overrides: Any) -> dict[str, Any]:
    return visit_data(
        **{
            "doctor": "D2",
            "assignment": "A2",
            "place": VILLAGE_A1,
            "kind": "posting",
            "check_in": f"2026-01-{day:02d}T08:00:00+08:00",
            "check_out": f"2026-01-{day:02d}T12:30:00+08:00",
            "recorded_at": f"2026-01-{day:02d}T12:40:00+08:00",
            **overrides,
        }
    )


def seed_review_week(app: Any) -> dict[str, Any]:
    """D2 (township A) logs four posting days in 2026-W02, one short of five, so the
    posting flag opens, and asks for leave on the Friday. Returns the ids."""
    client = app.test_client()
    visits = [make_change(posting_day(day, patients=day)) for day in (5, 6, 7, 8)]
    leave = make_change(
        {"doctor": "D2", "start": "2026-01-09", "end": "2026-01-09", "reason": "家事"},
        collection="leave",
    )
    push(client, "d2", *visits, leave)
    return {"visits": [v["id"] for v in visits], "leave": leave["id"], "flag": POSTING_WEEK_KEY}
