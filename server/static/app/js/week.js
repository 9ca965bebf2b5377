// This week's duty standing on the device: the visits it holds, unsynced ones included,
// counted against the plan the server computed with its rules (GET /api/v1/duty/plan,
// rules/plan.py). Only counting is done here, the way rules/engine.py counts (RULES.md
// posting.days_per_week, sitin.days_per_week, patrol.per_week): the rule set, the calendar,
// the hours and the leave come in the plan.
const EPSILON = 1e-9;
const DAY_MS = 86400000;

/** The local date of an ISO datetime at its own UTC offset, as written: 2026-03-09. */
export function localDate(iso) {
  return String(iso).slice(0, 10);
}

function offsetOf(iso) {
  const match = /([+-]\d\d:\d\d|Z)$/.exec(String(iso));
  return match ? match[1] : 'Z';
}

function addDays(day, n) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

export function hours(visit) {
  return (Date.parse(visit.check_out) - Date.parse(visit.check_in)) / 3600000;
}

/** Hours on site per local date; a visit across midnight is split at local midnight (at
 * the check-in's offset), each date credited with its own part (rules.engine.split_by_date). */
export function splitByDate(visit) {
  const offset = offsetOf(visit.check_in);
  let start = Date.parse(visit.check_in);
  const end = Date.parse(visit.check_out);
  let day = localDate(visit.check_in);
  const parts = [];
  for (;;) {
    const next = addDays(day, 1);
    const midnight = Date.parse(`${next}T00:00:00${offset === 'Z' ? 'Z' : offset}`);
    if (end <= midnight) {
      parts.push([day, (end - start) / 3600000]);
      return parts;
    }
    parts.push([day, (midnight - start) / 3600000]);
    start = midnight;
    day = next;
  }
}

/** Does a visit count for the plan's assignment? Tagged with it, or untagged at one of its
 * places on a date the assignment covers (rules.engine.Index.assignment_data). */
export function countsFor(plan, visit, doctor) {
  if (doctor && visit.doctor && visit.doctor !== doctor) return false;
  if (visit.assignment) return visit.assignment === plan.assignment;
  const day = localDate(visit.check_in);
  return plan.places.includes(visit.place) && plan.starts <= day && (!plan.ends || day <= plan.ends);
}

/** What a week stands at on `today` (YYYY-MM-DD): measured against required, and
 * ok | at_risk | violation the way the engine flags it (the at-risk warning comes while
 * the week can still be saved). */
export function standing(plan, visits, today, doctor = null) {
  const mine = visits
    .filter((v) => v && v.check_in && v.check_out && countsFor(plan, v, doctor))
    .filter((v) => localDate(v.check_in) <= today)
    .sort((a, b) => (Date.parse(a.check_in) - Date.parse(b.check_in)) || String(a.id).localeCompare(String(b.id)));
  const inWeek = (day) => plan.first <= day && day <= plan.last && day <= today;
  let measured = 0;
  const evidence = [];
  if (plan.unit === 'sessions') {
    const perDate = new Map();
    for (const v of mine) {
      const day = localDate(v.check_in);
      if (hours(v) >= plan.hours - EPSILON && (perDate.get(day) || 0) < plan.per_date) {
        perDate.set(day, (perDate.get(day) || 0) + 1);
        if (inWeek(day)) {
          measured += 1;
          evidence.push(v.id);
        }
      }
    }
  } else {
    const byDate = new Map(); // date -> place -> hours
    for (const v of mine) {
      for (const [day, h] of splitByDate(v)) {
        const byPlace = byDate.get(day) || new Map();
        byPlace.set(v.place, (byPlace.get(v.place) || 0) + h);
        byDate.set(day, byPlace);
      }
    }
    for (const [day, byPlace] of byDate) {
      if (inWeek(day) && Math.max(...byPlace.values()) >= plan.hours - EPSILON) {
        measured += 1;
        evidence.push(day);
      }
    }
  }
  const remaining = plan.available.filter((day) => day > today).length;
  const reachable = measured + remaining * plan.per_date;
  const over = plan.sunday <= today;
  let status = 'ok';
  if (over && measured < plan.required) status = 'violation';
  else if (!over && reachable < plan.required) status = 'at_risk';
  return { assignment: plan.assignment, kind: plan.kind, week: plan.week, unit: plan.unit,
    measured, required: plan.required, remaining, reachable, over, status, evidence };
}

/** Monday..Sunday label of the ISO week of a date: 2026-W11. */
export function isoWeek(day) {
  const d = new Date(Date.parse(`${day}T00:00:00Z`));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const year = d.getUTCFullYear();
  const week = Math.ceil(((d - Date.UTC(year, 0, 1)) / DAY_MS + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** Today in China (UTC+8, RULES.md): the day a live evaluation counts to. */
export function chinaToday(now = Date.now()) {
  return new Date(now + 8 * 3600000).toISOString().slice(0, 10);
}

/** The standing of every plan of the week of `today`. */
export function weekStanding(plans, visits, today, doctor = null) {
  const week = isoWeek(today);
  return plans.filter((p) => p.week === week).map((p) => standing(p, visits, today, doctor));
}
