// The compact form of a pull page (`pull?compact=1`, docs/sync-protocol.md; sync/compact.py
// builds it on the server and expands it in the Python client). Issue 14, the wire: a flag
// comes as only what its id and the page's `flags_shared` do not say, and a change without
// seq, meta, `deleted: false` and `data: null`. `expandPage` gives back every change as the
// full form brings it, a flag's keys in the same order, so the store holds the same text.

const HOLE = '\u0001';

/** What a flag id (rule|subject type|subject id|period) says; null for another shape. */
export function idParts(flagId) {
  const parts = String(flagId).split('|');
  if (parts.length !== 4 || parts.some((p) => !p)) return null;
  const [rule, type, id, period] = parts;
  return { key: flagId, rule, subject: { type, id }, period };
}

const DAY = 86400000;
const iso = (d) => d.toISOString().slice(0, 10);
// Years 1000-9998 only, as sync/compact.py reads them (Date.UTC maps years below 100 to 19xx).
const YEAR = '([1-9][0-9]{3})';

function day(text) {
  const match = new RegExp(`^${YEAR}-([0-9]{2})-([0-9]{2})$`).exec(text);
  if (!match) return null;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const value = new Date(Date.UTC(y, m - 1, d));
  return value.getUTCFullYear() === y && value.getUTCMonth() === m - 1 && value.getUTCDate() === d ? value : null;
}

function isoWeeks(year) {
  // A year has 53 ISO weeks when it starts on a Thursday, or on a Wednesday in a leap year.
  const jan1 = new Date(Date.UTC(year, 0, 1)).getUTCDay();
  const leap = new Date(Date.UTC(year, 1, 29)).getUTCMonth() === 1;
  return jan1 === 4 || (leap && jan1 === 3) ? 53 : 52;
}

function range(first, last) {
  if (!first || !last || first.getUTCFullYear() > 9998 || last.getUTCFullYear() > 9998) return null;
  return [iso(first), iso(last)];
}

/** The first and last day of a period label (rules.periods.label_range), or null. */
export function periodDays(period) {
  if (typeof period !== 'string') return null;
  let match;
  if (period.includes('/')) {
    const cut = period.indexOf('/');
    return range(day(period.slice(0, cut)), day(period.slice(cut + 1)));
  }
  if ((match = new RegExp(`^${YEAR}-W([0-9]{2})$`).exec(period))) {
    const [year, week] = [Number(match[1]), Number(match[2])];
    if (week < 1 || week > isoWeeks(year)) return null;
    const jan4 = new Date(Date.UTC(year, 0, 4));
    const monday = new Date(jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY + (week - 1) * 7 * DAY);
    return range(monday, new Date(monday.getTime() + 6 * DAY));
  }
  if ((match = new RegExp(`^${YEAR}$`).exec(period))) {
    const year = Number(match[1]);
    return range(new Date(Date.UTC(year, 0, 1)), new Date(Date.UTC(year, 11, 31)));
  }
  if ((match = new RegExp(`^${YEAR}-([0-9]{2})$`).exec(period))) {
    const [year, month] = [Number(match[1]), Number(match[2])];
    if (month < 1 || month > 12) return null;
    return range(new Date(Date.UTC(year, month - 1, 1)), new Date(Date.UTC(year, month, 1) - DAY));
  }
  const one = day(period);
  return range(one, one);
}

function defaultScope(period) {
  const days = periodDays(period);
  return days ? `${days[0]}/${days[1]}` : null;
}

/** The values an explanation's holes name by index (sync/compact.py `known_values`). */
export function knownValues(flagId, scope) {
  const parts = String(flagId).split('|');
  const [period, subject] = parts.length === 4 ? [parts[3], parts[2]] : ['', ''];
  const days = periodDays(period) || ['', ''];
  let first = '';
  let last = '';
  if (typeof scope === 'string') {
    const cut = scope.indexOf('/');
    [first, last] = cut < 0 ? [scope, ''] : [scope.slice(0, cut), scope.slice(cut + 1)];
  }
  return [period, subject, days[0], days[1], first, last];
}

function expandText(parts, templates, known) {
  const pieces = String(templates[parts[0]]).split(HOLE);
  const values = parts.slice(1);
  if (values.length !== pieces.length - 1) throw new Error(`template ${parts[0]} has ${pieces.length - 1} holes, given ${values.length}`);
  let text = pieces[0];
  values.forEach((value, i) => {
    text += (typeof value === 'number' ? known[value] : value) + pieces[i + 1];
  });
  return text;
}

/** The full body of a flag sent in compact form, its keys in the page's order. */
export function expandFlag(flagId, compact, shared) {
  const merged = { ...(idParts(flagId) || {}), ...(shared.defaults || {}), ...compact };
  if (!('scope' in compact)) merged.scope = defaultScope(merged.period);
  const explanation = compact.explanation;
  if (explanation && typeof explanation === 'object' && !Array.isArray(explanation)) {
    const known = knownValues(flagId, merged.scope);
    const texts = {};
    for (const [lang, text] of Object.entries(explanation)) {
      texts[lang] = Array.isArray(text) ? expandText(text, shared.templates || [], known) : text;
    }
    merged.explanation = texts;
  }
  const ordered = {};
  for (const name of shared.fields || []) if (name in merged) ordered[name] = merged[name];
  for (const [name, value] of Object.entries(merged)) if (!(name in ordered)) ordered[name] = value;
  return ordered;
}

/** A compact pull page as the full form would have brought it (a full page as it is). */
export function expandPage(page) {
  if (!page || typeof page !== 'object') return page;
  const shared = page.flags_shared || {};
  delete page.flags_shared;
  for (const change of page.changes || []) {
    if (!change || typeof change !== 'object') continue;
    if (change.flag && typeof change.flag === 'object') {
      change.data = expandFlag(change.id, change.flag, shared);
      delete change.flag;
    }
    if (!('deleted' in change)) change.deleted = false;
    if (!('data' in change)) change.data = null;
  }
  return page;
}
