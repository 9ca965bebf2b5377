// Checks built from a form definition as GET /api/v1/forms serves it (the visit form's
// shape is asserted against the server's own answer in tests/app/test_app_shell.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../../server/static/app/js/forms.js';

const def = (name, type, extra = {}) => ({ name, type, label: { zh: name, en: name }, required: true, allow_none: false,
  choices: [], minimum: null, maximum: null, max_length: null, ...extra });
const visitForm = {
  collection: 'visits', version: 1,
  fields: [def('doctor', 'id'), def('place', 'id'), def('kind', 'choice', { choices: ['posting', 'patrol', 'sitin'] }),
    def('check_in', 'datetime'), def('check_out', 'datetime'), def('patients', 'integer', { minimum: 0, maximum: 10000 }),
    def('notes', 'text', { required: false, allow_none: true, max_length: 500 })],
  checks: [{ check: 'after', field: 'check_out', other: 'check_in' }, { check: 'max_hours', field: 'check_out', other: 'check_in', hours: 24 },
    { check: 'not_future', field: 'check_in', hours: 24 }],
};
const good = { doctor: 'D1', place: 'V1', kind: 'patrol', check_in: '2026-03-09T08:00:00+08:00', check_out: '2026-03-09T12:00:00+08:00', patients: 0 };
const now = Date.parse('2026-03-09T12:00:00+08:00');

test('a valid visit has no errors', () => {
  assert.deepEqual(validate(visitForm, good, { now }), {});
});

test('each field gets its own error, with the limit from the definition', () => {
  const errors = validate(visitForm, { ...good, doctor: '', kind: 'tour', patients: -1, notes: 'x'.repeat(501), check_in: '2026-03-09 08:00' }, { now });
  assert.equal(errors.doctor.code, 'required');
  assert.equal(errors.kind.code, 'choice');
  assert.deepEqual(errors.patients, { code: 'minimum', params: { min: 0 } });
  assert.deepEqual(errors.notes, { code: 'max_length', params: { max: 500 } });
  assert.equal(errors.check_in.code, 'datetime', 'a time without its offset is refused, as on the server');
});

test('the checks across fields: check-out after check-in, at most 24 hours, not in the future', () => {
  assert.equal(validate(visitForm, { ...good, check_out: good.check_in }, { now }).check_out.code, 'after');
  assert.equal(validate(visitForm, { ...good, check_out: '2026-03-10T09:00:00+08:00' }, { now }).check_out.code, 'max_hours');
  assert.equal(validate(visitForm, { ...good, check_in: '2026-03-11T08:00:00+08:00', check_out: '2026-03-11T09:00:00+08:00' }, { now }).check_in.code, 'future');
  assert.equal(validate(visitForm, { ...good, patients: 2.5 }, { now }).patients.code, 'integer');
});
