// The sync loop (docs/sync-protocol.md; offline_client/sync_loop.py does the same): push the
// outbox in batches, then pull until `has_more` is false, then fetch the week plan.
// Resumable at every step: a change stays in the outbox, frozen with its change id (or HLC
// stamp), until its answer is stored, so a push cut off anywhere — the tab closed after
// the request left and before its answer came — is sent again unchanged and the server
// answers it once; each pulled page is stored with its cursor in one transaction.
// `store` is the Store (store.js) or the worker's proxy of it: every call is awaited.
import { fullResults, onTheWire } from './outbox.js';
import { newId } from './store.js';
import { retryable, retryDelay } from './backoff.js';
import { localIso } from './ui.js';
import { chinaToday } from './week.js';

// What a week plan is computed from (rules/plan.py): when a pull brings any of these, or
// the day changed, the plan is fetched again; a push of visits alone leaves it as it is.
const PLAN_INPUTS = new Set(['assignments', 'leave', 'trainings', 'doctors']);

export const DEFAULT_BATCH = 2000;
export const PULL_LIMIT = 5000;

export async function push(store, api, summary, { batchSize = DEFAULT_BATCH, hooks = {} } = {}) {
  const sentIds = new Set();
  for (;;) {
    const batch = await store.takeBatch(batchSize);
    if (!batch.length) return;
    if (batch.every((c) => sentIds.has(c.change_id))) {
      // Answered-for already in this run and still in flight: the server left them unanswered.
      throw new Error(`the server did not answer ${batch.length} change(s); they stay in the outbox`);
    }
    const body = {
      device_id: await store.deviceId(),
      batch_id: newId(),
      sent_at: localIso(),
      clock: (await store.clock()) || (await store.tick()),
      changes: batch.map(onTheWire),
      compact: true,
    };
    if (hooks.beforePush) await hooks.beforePush(body);
    let answer;
    try {
      answer = await api.push(body);
    } catch (error) {
      if (error.status === 413 && batchSize > 1) {
        batchSize = Math.max(1, Math.floor(batchSize / 2)); // in flight: the next batch takes them again first
        continue;
      }
      throw error;
    }
    if (hooks.afterPush) await hooks.afterPush(answer);
    const outcome = await store.storeAnswers(fullResults(answer.results || [], batch), batch);
    await store.receiveClock(answer.clock);
    batch.forEach((c) => sentIds.add(c.change_id));
    summary.sent += batch.length;
    summary.accepted += outcome.accepted;
    summary.duplicates += outcome.duplicates;
    summary.rejected += outcome.rejected.length;
    summary.conflicts += outcome.conflicts.length;
  }
}

export async function pull(store, api, summary, { limit = PULL_LIMIT, hooks = {} } = {}) {
  let cursor = await store.cursor();
  for (;;) {
    let page;
    try {
      page = await api.pull(cursor, limit);
    } catch (error) {
      if (error.code === 'invalid_cursor' && cursor) {
        cursor = null; // a rebuilt server database: pull everything again (idempotent)
        continue;
      }
      throw error;
    }
    const changes = page.changes || [];
    const next = String(page.cursor || cursor || '');
    await store.applyPulled(changes, next);
    await store.receiveClock(page.clock);
    summary.received += changes.length;
    for (const change of changes) summary.collections.add(change.collection);
    if (hooks.afterPage) await hooks.afterPage(page);
    if (!page.has_more || next === (cursor || '')) return;
    cursor = next;
  }
}

/** Does the stored week plan need fetching again after this sync? */
export function planStale(plan, collections, today = chinaToday()) {
  return !plan || plan.as_of !== today || [...collections].some((c) => PLAN_INPUTS.has(c));
}

/** One whole sync: push, pull to the end, then the week plan if it changed (kept for
 * offline use). */
export async function runSync(store, api, options = {}) {
  const summary = { sent: 0, accepted: 0, duplicates: 0, rejected: 0, conflicts: 0, received: 0, collections: new Set() };
  await push(store, api, summary, options);
  await pull(store, api, summary, options);
  if (planStale(await store.plan(), summary.collections, options.today)) {
    try {
      await store.setPlan(await api.plan());
    } catch (error) {
      if (error.kind !== 'offline' && error.status !== 403) throw error;
    }
  }
  summary.collections = [...summary.collections];
  await store.markSynced();
  summary.pending = await store.outboxCount();
  return summary;
}

/** The sync state machine the screens show: idle → syncing → idle, or → waiting (a retry
 * at `retryAt`, after backoff with jitter) or → stopped (a person must act: sign in). */
export function afterFailure(state, error, { now = Date.now(), random = Math.random } = {}) {
  const attempt = (state.attempt || 0) + 1;
  if (error && error.status === 401) return { phase: 'signed_out', attempt: 0, error: error.code || 'unauthorized' };
  if (!retryable(error)) return { phase: 'stopped', attempt, error: error.code || error.message };
  const delay = retryDelay(attempt - 1, { retryAfterS: error.retryAfterS, random });
  return { phase: error.kind === 'offline' ? 'offline' : 'waiting', attempt, retryAt: now + delay, error: error.code || error.kind };
}

export function afterSuccess(summary, { now = Date.now() } = {}) {
  return { phase: 'idle', attempt: 0, lastSyncAt: now, summary };
}

/** Runs syncs one at a time: on demand, when the network returns, after an edit, and again
 * after a failure by backoff; `onChange(state)` tells the screens. */
export class Syncer {
  constructor({ store, api, onChange = () => {}, timers = globalThis, random = Math.random }) {
    Object.assign(this, { store, api, onChange, timers, random });
    this.state = { phase: 'idle', attempt: 0 };
    this.running = null;
    this.timer = null;
  }

  set(state) {
    this.state = state;
    this.onChange(state);
  }

  /** Sync now (joins a sync already running). */
  now() {
    if (this.running) return this.running;
    if (this.timer) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (globalThis.navigator && globalThis.navigator.onLine === false) {
      // The browser knows there is no network: wait for its `online` event, try nothing.
      this.set({ ...this.state, phase: 'offline' });
      return Promise.resolve(null);
    }
    this.set({ ...this.state, phase: 'syncing' });
    this.running = runSync(this.store, this.api)
      .then((summary) => {
        this.set(afterSuccess(summary));
        return summary;
      })
      .catch((error) => {
        const next = afterFailure(this.state, error, { random: this.random });
        this.set(next);
        if (next.retryAt) this.timer = this.timers.setTimeout(() => this.now(), next.retryAt - Date.now());
        return null;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** Sync soon (after an edit): coalesces several edits into one sync. */
  soon(delayMs = 1500) {
    if (this.running || this.timer) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.now();
    }, delayMs);
  }
}
