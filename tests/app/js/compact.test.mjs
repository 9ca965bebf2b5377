// The compact pull form (compact.js; sync/compact.py builds it): a device expands a page back
// to the full form, a flag's keys in the order the full form sends them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandPage, periodDays } from '../../../server/static/app/js/compact.js';

const full = {
  key: 'posting.days_per_week|assignment|A0005|2024-W01', rule: 'posting.days_per_week', status: 'violation',
  subject: { type: 'assignment', id: 'A0005' }, period: '2024-W01', measured: 0, required: 5, evidence: [],
  explanation: { zh: '2024-W01（派驻 A0005，2024-01-01 至 2024-01-07）：实际0。' },
  ruleset: { name: 'guangxi', version: '2023.53' }, calendar: 'chinese_calendar 1.11.0', doctor: 'D0005',
  scope: '2024-01-01/2024-01-07', state: 'resolved',
};

test('a compact flag comes back with every field in the full form\'s order', () => {
  const page = expandPage({
    changes: [
      { collection: 'flags', id: full.key, version: 2, flag: { explanation: { zh: [0, 0, 1, 2, 3, '0'] } } },
      { collection: 'places', id: 'V1', version: 1, data: { name: '村一' } },
      { collection: 'visits', id: 'v9', version: 3, deleted: true },
    ],
    cursor: '9', has_more: false,
    flags_shared: {
      fields: Object.keys(full),
      defaults: { status: 'violation', state: 'resolved', measured: 0, required: 5, evidence: [],
        ruleset: full.ruleset, calendar: full.calendar, doctor: 'D0005' },
      templates: ['\u0001（派驻 \u0001，\u0001 至 \u0001）：实际\u0001。'],
    },
  });
  assert.equal(JSON.stringify(page.changes[0].data), JSON.stringify(full));
  assert.deepEqual(page.changes[0], { collection: 'flags', id: full.key, version: 2, data: full, deleted: false });
  assert.deepEqual(page.changes[1], { collection: 'places', id: 'V1', version: 1, data: { name: '村一' }, deleted: false });
  assert.deepEqual(page.changes[2], { collection: 'visits', id: 'v9', version: 3, deleted: true, data: null });
  assert.equal('flags_shared' in page, false);
});

test('a full page passes as it is', () => {
  const change = { collection: 'flags', id: 'a|b|c|d', version: 1, deleted: false, seq: 4, data: { state: 'open' }, meta: {} };
  assert.deepEqual(expandPage({ changes: [{ ...change }], cursor: '4', has_more: false }).changes, [change]);
});

test('period labels read as the rules write them, and nothing else', () => {
  assert.deepEqual(periodDays('2024-W01'), ['2024-01-01', '2024-01-07']);
  assert.deepEqual(periodDays('2020-W53'), ['2020-12-28', '2021-01-03']);
  assert.equal(periodDays('2021-W53'), null);
  assert.deepEqual(periodDays('2024-02'), ['2024-02-01', '2024-02-29']);
  assert.deepEqual(periodDays('2024'), ['2024-01-01', '2024-12-31']);
  assert.deepEqual(periodDays('2024-03-05'), ['2024-03-05', '2024-03-05']);
  assert.deepEqual(periodDays('2024-03-02/2024-06-30'), ['2024-03-02', '2024-06-30']);
  for (const odd of ['2024-02-30', '0099', '0099-W01', '2024-13', '2024-W00', '20240101', '', 'x/y']) {
    assert.equal(periodDays(odd), null, odd);
  }
});
