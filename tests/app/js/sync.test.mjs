// The sync loop and its state machine against a fake server that answers by the protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryDb } from './sqlite.mjs';
import { Store } from '../../../server/static/app/js/store.js';
import { afterFailure, afterSuccess, planStale, runSync } from '../../../server/static/app/js/sync.js';
import { ApiError } from '../../../server/static/app/js/api.js';
import { retryDelay } from '../../../server/static/app/js/backoff.js';

const visit = (n) => ({ doctor: 'D1', place: 'V1', kind: 'patrol', check_in: `2026-03-0${n}T08:00:00+08:00`,
  check_out: `2026-03-0${n}T12:00:00+08:00`, patients: n });

/** A server that remembers change ids (exactly once) and serves pulls in pages. */
function fakeServer({ pages = [] } = {}) {
  const records = new Map();
  const answers = new Map();
  const log = { pushes: 0, pulls: [], applied: 0 };
  return {
    records, log,
    failNextPushAfterApplying: false,
    async push(body) {
      log.pushes += 1;
      const results = body.changes.map((c) => {
        const key = c.change_id || c.hlc;
        if (answers.has(key)) return answers.get(key);
        const version = (records.get(c.id)?.version || 0) + 1;
        records.set(c.id, { version, data: c.data });
        log.applied += 1;
        const result = { status: 'accepted', version };
        answers.set(key, result);
        return result;
      });
      if (this.failNextPushAfterApplying) {
        this.failNextPushAfterApplying = false;
        throw new ApiError('offline', { message: 'the tab closed before the answer' });
      }
      return { results, clock: '000000000000001-0000000000-server' };
    },
    async pull(cursor) {
      log.pulls.push(cursor);
      const index = cursor ? Number(cursor) : 0;
      const page = pages[index] || [];
      return { changes: page, cursor: String(index + 1), has_more: index + 1 < pages.length };
    },
    async plan() {
      log.plans = (log.plans || 0) + 1;
      return { plans: [], as_of: '2026-03-09' };
    },
  };
}

test('a sync pushes the outbox, then pulls every page to the end, then keeps the plan', async () => {
  const store = new Store(await memoryDb());
  store.save('visits', 'a', visit(1));
  store.save('visits', 'b', visit(2));
  const server = fakeServer({ pages: [
    [{ collection: 'places', id: 'V1', version: 1, deleted: false, data: { name: '村一' } }],
    [{ collection: 'assignments', id: 'A1', version: 1, deleted: false, data: { kind: 'patrol' } }],
  ] });
  const summary = await runSync(store, server, { today: '2026-03-09' });
  assert.equal(summary.accepted, 2);
  assert.equal(summary.received, 2);
  assert.deepEqual(server.log.pulls, [null, '1']);
  assert.equal(store.cursor(), '2');
  assert.equal(store.outboxCount(), 0);
  assert.deepEqual(store.plan(), { plans: [], as_of: '2026-03-09' });
  assert.ok(store.meta('last_sync_at'));
});

test('a push whose answer never came is sent again unchanged and applied once', async () => {
  const store = new Store(await memoryDb());
  store.save('visits', 'a', visit(1));
  store.save('visits', 'b', visit(2));
  const server = fakeServer();
  server.failNextPushAfterApplying = true;
  await assert.rejects(runSync(store, server));
  assert.equal(store.syncState('visits', 'a'), 'in_flight');
  store.save('visits', 'c', visit(3));
  await runSync(store, server);
  assert.equal(server.log.applied, 3, 'each visit applied exactly once');
  assert.equal(server.records.size, 3);
  assert.equal(store.outboxCount(), 0);
  assert.equal(store.get('visits', 'a').version, 1);
});

test('the state machine backs off with jitter, waits for the network, and stops for a sign-in', () => {
  const now = 1_000_000;
  const offline = afterFailure({ attempt: 0 }, new ApiError('offline'), { now, random: () => 0.5 });
  assert.equal(offline.phase, 'offline');
  assert.equal(offline.retryAt, now + 1000);
  const server = afterFailure(offline, new ApiError('http', { status: 503, retryAfterS: 30 }), { now, random: () => 0.1 });
  assert.equal(server.phase, 'waiting');
  assert.equal(server.attempt, 2);
  assert.equal(server.retryAt, now + 30000, "the server's Retry-After is a floor");
  assert.equal(afterFailure(server, new ApiError('http', { status: 401, code: 'token_revoked' })).phase, 'signed_out');
  assert.equal(afterFailure(server, new ApiError('http', { status: 400, code: 'invalid_request' })).phase, 'stopped');
  assert.deepEqual(afterSuccess({ sent: 1 }, { now }).phase, 'idle');
});

test('backoff grows to its cap and is spread by jitter', () => {
  assert.equal(retryDelay(0, { random: () => 0.999 }), 1998);
  assert.equal(retryDelay(20, { random: () => 0.999 }), Math.floor(0.999 * 300000));
  const spread = new Set([0.1, 0.4, 0.8].map((r) => retryDelay(5, { random: () => r })));
  assert.equal(spread.size, 3);
});

test('an expired access token is refreshed once and the call retried', async () => {
  const { Api } = await import('../../../server/static/app/js/api.js');
  let session = { access_token: 'old', refresh_token: 'r' };
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push([url, init.headers.Authorization, init.headers['X-Device-Id']]);
    const json = (status, body) => ({ ok: status < 400, status, headers: new Map([['Retry-After', null]]), json: async () => body });
    if (url.endsWith('/auth/refresh')) return json(200, { access_token: 'new' });
    if (init.headers.Authorization === 'Bearer old') return json(401, { error: { code: 'token_expired' } });
    return json(200, { changes: [], cursor: '1', has_more: false });
  };
  const api = new Api({ session: { get: () => session, set: (s) => { session = s; } }, deviceId: 'webabc', fetchImpl });
  const page = await api.pull(null, 10);
  assert.equal(page.cursor, '1');
  assert.equal(session.access_token, 'new');
  assert.deepEqual(calls.map((c) => c[1]), ['Bearer old', 'Bearer r', 'Bearer new']);
  assert.ok(calls.every((c) => c[2] === 'webabc'));
});

test('the week plan is fetched again only when its inputs or the day changed', async () => {
  const store = new Store(await memoryDb());
  const server = fakeServer({ pages: [[{ collection: 'assignments', id: 'A1', version: 1, deleted: false, data: {} }]] });
  await runSync(store, server, { today: '2026-03-09' });
  assert.equal(server.log.plans, 1);
  store.save('visits', 'a', visit(1));
  await runSync(store, server, { today: '2026-03-09' });
  assert.equal(server.log.plans, 1, 'a push of visits leaves the plan as it is');
  await runSync(store, server, { today: '2026-03-10' });
  assert.equal(server.log.plans, 2, 'a new day');
  assert.equal(planStale({ as_of: '2026-03-10' }, new Set(['leave']), '2026-03-10'), true);
  assert.equal(planStale({ as_of: '2026-03-10' }, new Set(['visits', 'flags']), '2026-03-10'), false);
});
