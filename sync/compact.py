"""The compact form of a pull page (`pull?compact=1`, docs/sync-protocol.md), both ways.

Issue 14 (the wire): a week's sync was 1.44x the bare gzip of its visits, and almost all of
the pull was the doctor's flags. A compact page leaves out of each change what a device
never stores (`seq`, `meta`, `deleted: false`, `data: null`) and sends a flag's body under
`flag` as only what its id and the page do not already say:

- `key`, `rule`, `subject` and `period` are the flag id's four parts (rule|type|id|period,
  as server/flags.py stores a flag under `rules.flags.Flag.key`);
- `scope` is left out when it is the period's own days;
- a field equal to the page's default for it (`flags_shared.defaults`: the most common value
  of that field among the page's flags — rule set, calendar, doctor, state ...) is left out;
- an explanation is [template, value, ...]: a template of `flags_shared.templates` (the text
  with a hole for each number, date or id) and the values for its holes; a value the flag
  names already (its period, subject, the first and last day of its period and scope) is
  its index in `known_values`.

`PageCompactor` builds it on the server; `expand_page` gives a device back every change as
the full form would have brought it, to the order of the keys
(server/static/app/js/compact.js does the same in the app). Each flag's compact form is
expanded again as it is built and compared with the full body as JSON text: a flag that
would not come back exactly is sent whole, under `data`. Pure: no Flask, no database.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sync.protocol import F_DATA, F_DELETED, F_FLAG, FLAGS, P_FLAGS_SHARED

JSON = dict[str, Any]

# Fields of a flag its id gives.
_FROM_ID = ("key", "rule", "subject", "period")
# Fields a page default may stand for: the ones many flags of one doctor share.
_SHARED = ("status", "state", "measured", "required", "evidence", "ruleset", "calendar", "doctor")
# A hole in a template; a text that holds this character is sent as it is.
HOLE = "\x01"
EMPTY = "—"  # an empty list in an explanation (rules.explain.format_days)
# A value in an explanation: a run of letters, digits and . : - _ that holds a digit
# (numbers, dates, week labels, record ids, versions), or a list of them joined by ", ",
# or the dash of an empty list. The words around it are the template.
_WORD = r"(?:[0-9A-Za-z_]+(?:[.:\-][0-9A-Za-z_]+)*|—)"
_TOKEN = re.compile(_WORD + r"(?:, " + _WORD + r")*")
_DIGIT = re.compile(r"[0-9]")
# Period labels as the rules write them, years 1000-9998 only: the app's JavaScript reads
# the same labels the same way (server/static/app/js/compact.js), and a label outside them
# keeps its scope on the wire.
_YEAR = r"([1-9][0-9]{3})"
_YEAR_ONLY = re.compile(_YEAR)
_DAY = re.compile(_YEAR + r"-([0-9]{2})-([0-9]{2})")
_WEEK = re.compile(_YEAR + r"-W([0-9]{2})")
_MONTH = re.compile(_YEAR + r"-([0-9]{2})")


def _day(text: str) -> date:
    match = _DAY.fullmatch(text)
    if not match:
        raise ValueError(text)
    return date(int(match[1]), int(match[2]), int(match[3]))


def period_days(period: str) -> tuple[str, str] | None:
    """The first and last day (ISO dates) of a period label, as `rules.periods.label_range`
    reads it (a day, an ISO week, a month, a year or first/last); None for anything else."""
    try:
        if "/" in period:
            head, tail = period.split("/", 1)
            first, last = _day(head), _day(tail)
        elif match := _WEEK.fullmatch(period):
            first = date.fromisocalendar(int(match[1]), int(match[2]), 1)
            last = first + timedelta(days=6)
        elif _YEAR_ONLY.fullmatch(period):
            first, last = date(int(period), 1, 1), date(int(period), 12, 31)
        elif match := _MONTH.fullmatch(period):
            first = date(int(match[1]), int(match[2]), 1)
            last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(1)
        else:
            first = last = _day(period)
    except ValueError:
        return None
    if first.year > 9998 or last.year > 9998:
        return None
    return first.isoformat(), last.isoformat()


def _text(value: Any) -> str:
    """JSON text as a device's JSON.stringify writes it: key order kept, no spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text: same type (1 is not 1.0 nor true), containers in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _counted(value: Any) -> Any:
    """A key to count a value by, equal for values `_same` holds equal."""
    return _text(value) if isinstance(value, dict | list) else (type(value).__name__, value)


def id_parts(flag_id: str) -> JSON | None:
    """What a flag id says: key, rule, subject and period; None for an id of another shape."""
    parts = flag_id.split("|")
    if len(parts) != 4 or not all(parts):
        return None
    rule, subject_type, subject_id, period = parts
    return {
        "key": flag_id,
        "rule": rule,
        "subject": {"type": subject_type, "id": subject_id},
        "period": period,
    }


def default_scope(period: Any) -> str | None:
    days = period_days(period) if isinstance(period, str) else None
    return f"{days[0]}/{days[1]}" if days else None


def known_values(flag_id: str, scope: Any) -> list[str]:
    """What an explanation's holes may name by index: the flag's period, its subject's id,
    the first and last day of its period, the first and last day of its scope."""
    parts = flag_id.split("|")
    period, subject = (parts[3], parts[2]) if len(parts) == 4 else ("", "")
    days = period_days(period) or ("", "")
    first, _, last = scope.partition("/") if isinstance(scope, str) else ("", "", "")
    return [period, subject, days[0], days[1], first, last]


def _template(text: str, known: list[str]) -> tuple[str, list[Any]] | None:
    if HOLE in text:
        return None
    values: list[Any] = []

    def hole(match: re.Match[str]) -> str:
        value = match.group(0)
        if not _DIGIT.search(value) and value != EMPTY:
            return value
        values.append(known.index(value) if value in known else value)
        return HOLE

    template = _TOKEN.sub(hole, text)
    return (template, values) if values else None


def expand_text(parts: list[Any], templates: list[str], known: list[str]) -> str:
    """The text of [template index, value, ...]."""
    pieces = templates[parts[0]].split(HOLE)
    values = parts[1:]
    if len(values) != len(pieces) - 1:
        raise ValueError(f"template {parts[0]} has {len(pieces) - 1} holes, given {len(values)}")
    text = pieces[0]
    for value, piece in zip(values, pieces[1:], strict=True):
        text += (known[value] if isinstance(value, int) else value) + piece
    return text


def expand_flag(flag_id: str, compact: JSON, shared: JSON) -> JSON:
    """The full body of a flag sent in compact form, its keys in the page's order."""
    defaults = shared.get("defaults") or {}
    merged: JSON = {**(id_parts(flag_id) or {}), **defaults, **compact}
    if "scope" not in compact:
        merged["scope"] = default_scope(merged.get("period"))
    explanation = compact.get("explanation")
    if isinstance(explanation, dict):
        known = known_values(flag_id, merged.get("scope"))
        templates = shared.get("templates") or []
        merged["explanation"] = {
            lang: expand_text(text, templates, known) if isinstance(text, list) else text
            for lang, text in explanation.items()
        }
    fields = shared.get("fields") or []
    ordered = {name: merged[name] for name in fields if name in merged}
    return ordered | {name: value for name, value in merged.items() if name not in ordered}


class PageCompactor:
    """The compact form of the changes of one page: built from all the flag bodies the page
    may carry (for their defaults and key order), then asked for one change at a time."""

    def __init__(self, flag_bodies: Iterable[Any]) -> None:
        bodies = [b for b in flag_bodies if isinstance(b, dict)]
        self.fields: list[str] = list(bodies[0]) if bodies else []
        self.defaults: JSON = {}
        for name in _SHARED:
            first: dict[Any, Any] = {}
            counted: Counter[Any] = Counter()
            for body in bodies:
                if name in body:
                    key = _counted(body[name])
                    counted[key] += 1
                    first.setdefault(key, body[name])
            if counted:
                key, times = counted.most_common(1)[0]
                if times > 1:
                    self.defaults[name] = first[key]
        self.templates: list[str] = []
        self._template_index: dict[str, int] = {}
        self.used = False

    def shared(self) -> JSON | None:
        """The page's `flags_shared` block, if a flag of it went compact."""
        if not self.used:
            return None
        return {"fields": self.fields, "defaults": self.defaults, "templates": self.templates}

    def change(self, wire: JSON) -> JSON:
        """A change without what the device never stores (seq, meta, `deleted: false`,
        `data: null`); a flag's body as `flag` where it comes back exactly."""
        out = {k: v for k, v in wire.items() if k not in ("seq", "meta")}
        if out.get(F_DELETED) is False:
            del out[F_DELETED]
        if F_DATA in out and out[F_DATA] is None:
            del out[F_DATA]
        if out.get("collection") == FLAGS and isinstance(out.get(F_DATA), dict):
            flag = self._flag(str(out.get("id")), out[F_DATA])
            if flag is not None:
                del out[F_DATA]
                out[F_FLAG] = flag
        return out

    def _flag(self, flag_id: str, body: JSON) -> JSON | None:
        parts = id_parts(flag_id)
        if parts is None:
            return None
        out: JSON = {}
        for name, value in body.items():
            if name in parts and _same(parts[name], value):
                continue
            if name == "scope" and value is not None and value == default_scope(body.get("period")):
                continue
            if name in self.defaults and _same(self.defaults[name], value):
                continue
            out[name] = value
        added: list[str] = []
        explanation = body.get("explanation")
        if isinstance(explanation, dict):
            known = known_values(flag_id, body.get("scope"))
            texts: JSON = {}
            for lang, text in explanation.items():
                found = _template(text, known) if isinstance(text, str) else None
                if found is None:
                    texts[lang] = text
                    continue
                template, values = found
                index = self._template_index.get(template)
                if index is None:
                    index = self._template_index[template] = len(self.templates)
                    self.templates.append(template)
                    added.append(template)
                texts[lang] = [index, *values]
            out["explanation"] = texts
        shared = {"fields": self.fields, "defaults": self.defaults, "templates": self.templates}
        try:
            same = _text(expand_flag(flag_id, out, shared)) == _text(body)
        except (ValueError, IndexError, KeyError):
            same = False
        if not same:
            return None  # the templates it added stay: harmless, and kept in order
        self.used = True
        return out


def expand_page(page: JSON) -> JSON:
    """A compact pull page as the full form would have brought it (a full page as it is)."""
    shared = page.pop(P_FLAGS_SHARED, None) or {}
    for change in page.get("changes") or []:
        if not isinstance(change, dict):
            continue
        flag = change.pop(F_FLAG, None)
        if isinstance(flag, dict):
            change[F_DATA] = expand_flag(str(change.get("id")), flag, shared)
        change.setdefault(F_DELETED, False)
        change.setdefault(F_DATA, None)
    return page
