// Week counting against a plan (the plan's numbers are the server's; see
// tests/app/test_week_plan.py for the same counting checked against rules/ itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chinaToday, isoWeek, splitByDate, standing, weekStanding } from '../../../server/static/app/js/week.js';

const patrol = {
  assignment: 'A1', doctor: 'D1', kind: 'patrol', places: ['V1', 'V2'], starts: '2026-01-05', ends: null,
  week: '2026-W11', first: '2026-03-09', last: '2026-03-15', sunday: '2026-03-15', unit: 'sessions',
  minimum: 2, required: 2, hours: 4, per_date: 2,
  available: ['2026-03-09', '2026-03-10', '2026-03-11', '2026-03-12', '2026-03-13'],
};
const posting = { ...patrol, assignment: 'A2', kind: 'posting', unit: 'duty_days', minimum: 4, required: 4, hours: 6, per_date: 1 };
const at = (day, from, to, extra = {}) => ({ id: `${day}-${from}`, doctor: 'D1', place: 'V1',
  check_in: `${day}T${from}:00+08:00`, check_out: `${day}T${to}:00+08:00`, ...extra });

test('half-day sessions count when long enough, at most per_date a date', () => {
  const visits = [at('2026-03-09', '08:00', '12:00'), at('2026-03-09', '13:00', '17:30'), at('2026-03-09', '18:00', '22:00'),
    at('2026-03-10', '08:00', '10:00')];
  const s = standing(patrol, visits, '2026-03-11');
  assert.equal(s.measured, 2);
  assert.equal(s.status, 'ok');
});

test('a week that can no longer reach what it requires is at risk before it is lost', () => {
  const visits = [at('2026-03-09', '08:00', '15:00')];
  const friday = standing(posting, visits, '2026-03-12');
  assert.equal(friday.measured, 1);
  assert.equal(friday.remaining, 1);
  assert.equal(friday.status, 'at_risk');
  const monday = standing(posting, visits, '2026-03-09');
  assert.equal(monday.status, 'ok', 'four workdays remain on Monday');
  const sunday = standing(posting, visits, '2026-03-15');
  assert.equal(sunday.status, 'violation');
});

test('duty days add up the hours at one place on a date, split at local midnight', () => {
  assert.deepEqual(splitByDate(at('2026-03-09', '20:00', '23:00')), [['2026-03-09', 3]]);
  const overnight = { id: 'n', doctor: 'D1', place: 'V1', check_in: '2026-03-09T20:00:00+08:00', check_out: '2026-03-10T03:00:00+08:00' };
  assert.deepEqual(splitByDate(overnight), [['2026-03-09', 4], ['2026-03-10', 3]]);
  const visits = [at('2026-03-10', '08:00', '11:00'), at('2026-03-10', '14:00', '17:00'), at('2026-03-11', '08:00', '11:00', { place: 'V2' }),
    at('2026-03-11', '12:00', '15:00')];
  const s = standing(posting, visits, '2026-03-13');
  assert.equal(s.measured, 1, '3 h + 3 h at V1 is a duty day; 3 h at V1 and 3 h at V2 is not');
});

test('a visit tagged with another assignment, or elsewhere, or later than today does not count', () => {
  const visits = [at('2026-03-09', '08:00', '12:00', { assignment: 'A9' }), at('2026-03-10', '08:00', '12:00', { place: 'V7' }),
    at('2026-03-12', '08:00', '12:00'), at('2026-03-11', '08:00', '12:00', { assignment: 'A1', place: 'V7' })];
  const s = standing(patrol, visits, '2026-03-11');
  assert.equal(s.measured, 1, 'only the one tagged A1');
});

test("the week's standing picks the plans of today's ISO week", () => {
  assert.equal(isoWeek('2026-03-15'), '2026-W11');
  assert.equal(isoWeek('2027-01-01'), '2026-W53');
  assert.equal(chinaToday(Date.parse('2026-03-08T17:00:00Z')), '2026-03-09');
  const rows = weekStanding([patrol, { ...posting, week: '2026-W12' }], [], '2026-03-10');
  assert.deepEqual(rows.map((r) => r.assignment), ['A1']);
});
