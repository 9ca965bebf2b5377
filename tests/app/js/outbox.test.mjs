// The outbox and the store: the same rules as offline_client/local/, on the SQLite build
// the app runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryDb } from './sqlite.mjs';
import { Store } from '../../../server/static/app/js/store.js';
import { fullResults, onTheWire } from '../../../server/static/app/js/outbox.js';

const visit = (overrides = {}) => ({ doctor: 'D1', place: 'V1', kind: 'patrol', check_in: '2026-03-09T08:00:00+08:00',
  check_out: '2026-03-09T12:00:00+08:00', patients: 3, ...overrides });

async function fresh() {
  return new Store(await memoryDb());
}

test('an edit of a change never sent collapses into it and keeps its change id', async () => {
  const store = await fresh();
  store.save('visits', 'v1', visit());
  const before = store.one('select change_id from outbox').change_id;
  store.save('visits', 'v1', visit({ patients: 9 }));
  const after = store.one('select change_id, data from outbox');
  assert.equal(after.change_id, before);
  assert.equal(JSON.parse(after.data).patients, 9);
  assert.equal(store.outboxCount(), 1);
  assert.equal(store.syncState('visits', 'v1'), 'pending');
});

test('a change in flight is frozen: a resend is the same change, the edit waits behind it', async () => {
  const store = await fresh();
  store.save('visits', 'v1', visit());
  const [sent] = store.takeBatch(10);
  store.save('visits', 'v1', visit({ patients: 7 }));
  const [again] = store.takeBatch(10);
  assert.deepEqual(again, sent, 'the resend after a lost answer is byte for byte the first');
  assert.equal(store.syncState('visits', 'v1'), 'in_flight');
  const outcome = store.storeAnswers(fullResults([{ status: 'accepted', version: 1 }], [sent]), [sent]);
  assert.equal(outcome.accepted, 1);
  const [next] = store.takeBatch(10);
  assert.notEqual(next.change_id, sent.change_id);
  assert.equal(next.base_version, 1);
  assert.equal(next.data.patients, 7);
});

test('a replayed answer changes nothing', async () => {
  const store = await fresh();
  store.save('visits', 'v1', visit());
  const batch = store.takeBatch(10);
  const answers = fullResults([{ status: 'accepted', version: 1 }], batch);
  store.storeAnswers(answers, batch);
  const outcome = store.storeAnswers(answers, batch);
  assert.equal(outcome.accepted, 0);
  assert.equal(store.get('visits', 'v1').version, 1);
  assert.equal(store.syncState('visits', 'v1'), 'synced');
});

test('a rejection is kept with its reason, never blocks the rest, and an edit sends again', async () => {
  const store = await fresh();
  store.save('visits', 'bad', visit({ patients: -1 }));
  store.save('visits', 'good', visit());
  const batch = store.takeBatch(10);
  store.storeAnswers(fullResults([
    { status: 'rejected', code: 'validation_failed', errors: { patients: ['must be at least 0'] } },
    { status: 'accepted', version: 1 },
  ], batch), batch);
  assert.equal(store.syncState('visits', 'bad'), 'rejected');
  assert.deepEqual(store.rejection('visits', 'bad').errors, { patients: ['must be at least 0'] });
  assert.equal(store.outboxCount(), 0);
  store.save('visits', 'bad', visit({ patients: 1 }));
  assert.equal(store.syncState('visits', 'bad'), 'pending');
  assert.equal(store.rejection('visits', 'bad'), null);
});

test('a conflict keeps both versions; keep mine queues mine on top of the server version', async () => {
  const store = await fresh();
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 1, deleted: false, data: visit() }], '5');
  store.save('visits', 'v1', visit({ patients: 4 }));
  const batch = store.takeBatch(10);
  const theirs = { version: 2, deleted: false, data: visit({ patients: 8 }) };
  store.storeAnswers(fullResults([{ status: 'conflict', version: 2, conflict_id: 'k1', code: 'stale_version', current: theirs }], batch), batch);
  const [conflict] = store.conflicts();
  assert.equal(conflict.mine.data.patients, 4);
  assert.equal(conflict.theirs.data.patients, 8);
  assert.equal(store.get('visits', 'v1').data.patients, 8, 'the device mirrors the kept version');
  assert.equal(store.syncState('visits', 'v1'), 'conflict');
  const change = store.resolve('k1', 'mine');
  assert.equal(change.op, 'upsert');
  assert.equal(change.base_version, 2);
  assert.equal(change.resolves, 'k1');
  assert.equal(store.get('visits', 'v1').data.patients, 4);
  assert.equal(store.conflicts().length, 0);
});

test('keep theirs adopts the server version and queues a resolve', async () => {
  const store = await fresh();
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 1, deleted: false, data: visit() }], '5');
  store.save('visits', 'v1', visit({ patients: 4 }));
  const batch = store.takeBatch(10);
  store.storeAnswers(fullResults([{ status: 'conflict', version: 2, conflict_id: 'k1', current: { version: 2, deleted: false, data: visit({ patients: 8 }) } }], batch), batch);
  const change = store.resolve('k1', 'theirs');
  assert.equal(change.op, 'resolve');
  assert.equal(onTheWire(change).resolves, 'k1');
  assert.equal(store.get('visits', 'v1').data.patients, 8);
});

test('a pulled version of a record with a local change pending is kept beside it', async () => {
  const store = await fresh();
  store.save('visits', 'v1', visit({ patients: 2 }));
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 3, deleted: false, data: visit({ patients: 5 }) }], '9');
  assert.equal(store.get('visits', 'v1').data.patients, 2);
  assert.equal(JSON.parse(store.row('visits', 'v1').theirs).data.patients, 5);
  assert.equal(store.cursor(), '9');
});

test('a send-back shows with its comment until the doctor edits the visit', async () => {
  const store = await fresh();
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 1, deleted: false, data: visit() }], '1');
  store.applyPulled([{ collection: 'reviews', id: 'r1', version: 1, deleted: false,
    data: { kind: 'send_back', visit: 'v1', visit_version: 1, comment: '时间不对', by: 'reviewer' } }], '2');
  assert.equal(store.syncState('visits', 'v1'), 'sent_back');
  assert.equal(store.listing('visits')[0].sendBack.comment, '时间不对');
  store.save('visits', 'v1', visit({ patients: 1 }));
  assert.equal(store.sendBacks().length, 0);
});

test('deleting a record the server never saw forgets it; one it saw queues a delete', async () => {
  const store = await fresh();
  store.save('visits', 'new', visit());
  store.remove('visits', 'new');
  assert.equal(store.get('visits', 'new'), null);
  assert.equal(store.outboxCount(), 0);
  store.applyPulled([{ collection: 'visits', id: 'old', version: 2, deleted: false, data: visit() }], '3');
  store.remove('visits', 'old');
  const [change] = store.takeBatch(10);
  assert.equal(change.op, 'delete');
  assert.equal(change.base_version, 2);
  assert.equal(onTheWire(change).base_version, 2);
});

test('the HLC stamp stands for the change id on the wire; a compact answer matches by position', async () => {
  const store = await fresh();
  store.save('visits', 'a', visit());
  store.save('visits', 'b', visit());
  const batch = store.takeBatch(10);
  const wire = batch.map(onTheWire);
  assert.ok(wire.every((w) => w.hlc && !('change_id' in w)));
  assert.ok(wire.every((w) => !('base_version' in w)), 'a new record\'s base version 0 is left out');
  assert.ok(wire[0].hlc < wire[1].hlc, 'the clock moves forward');
  const full = fullResults([{ status: 'accepted', version: 1 }, { status: 'duplicate', version: 4 }], batch);
  assert.deepEqual(full.map((r) => r.id), ['a', 'b']);
  assert.equal(full[1].change_id, batch[1].change_id);
});

test('keeping theirs never moves a record back to an older snapshot a later pull replaced', async () => {
  const store = await fresh();
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 1, deleted: false, data: visit() }], '5');
  store.save('visits', 'v1', visit({ patients: 4 }));
  const batch = store.takeBatch(10);
  store.storeAnswers(fullResults([{ status: 'conflict', version: 2, conflict_id: 'k1', current: { version: 2, deleted: false, data: visit({ patients: 8 }) } }], batch), batch);
  store.applyPulled([{ collection: 'visits', id: 'v1', version: 3, deleted: true, data: visit({ patients: 8 }) }], '6');
  store.resolve('k1', 'theirs');
  const held = store.get('visits', 'v1');
  assert.equal(held.version, 3);
  assert.equal(held.deleted, true, 'the deletion pulled later stays; the record does not come back');
});
