// The outbox: one pending change a record (offline_client/local/outbox.py, the same rules).
// A later edit of a record whose change was never sent collapses into that change and
// keeps its change id; once the change is in flight (sent, no answer stored) it is frozen,
// so a resend is byte for byte the same change and the server answers it once
// (docs/sync-protocol.md, "Exactly once"); the edit waits in `queued` until the answer is
// stored, then goes out as a new change. Rejections never sit in the outbox, so they never
// block it. Functions over a Store (store.js), called inside its transactions.
import { newId } from './store.js';
import { validAsId } from './hlc.js';

const dumps = (value) => (value === null || value === undefined ? null : JSON.stringify(value));
const loads = (text) => (text === null || text === undefined ? null : JSON.parse(text));

function change(row) {
  return {
    collection: row.collection,
    id: row.record_id,
    op: row.op,
    change_id: row.change_id,
    base_version: row.base_version,
    data: loads(row.data),
    hlc: row.hlc,
    resolves: row.resolves,
  };
}

export function entry(store, collection, id) {
  const row = store.one('select * from outbox where collection = ? and record_id = ?', [collection, id]);
  return row ? { change: change(row), in_flight: Boolean(row.in_flight), queued: loads(row.queued) } : null;
}

export function count(store) {
  return store.one('select count(*) as n from outbox').n;
}

/** Put a change in the outbox: wait behind an in-flight change, collapse, or add. */
export function queue(store, collection, id, op, data, stamp, { baseVersion, resolves = null }) {
  store.dropRejection(collection, id); // an edit supersedes a rejection: a new change
  const current = entry(store, collection, id);
  if (current && current.in_flight) {
    const queued = { op, data, hlc: stamp, resolves };
    store.run('update outbox set queued = ? where collection = ? and record_id = ?', [dumps(queued), collection, id]);
    return;
  }
  if (current) {
    store.run('update outbox set op = ?, data = ?, hlc = ?, resolves = ? where collection = ? and record_id = ?',
      [op, dumps(data), stamp, resolves, collection, id]);
    return;
  }
  store.run(`insert into outbox (collection, record_id, change_id, op, base_version, data, hlc, resolves,
    in_flight, queued, position) values (?, ?, ?, ?, ?, ?, ?, ?, 0, null, ?)`,
  [collection, id, newId(), op, baseVersion, dumps(data), stamp, resolves, store.nextCounter('outbox_position')]);
}

/** The next changes to push, marked in flight (frozen), in flight ones first, unchanged. */
export function takeBatch(store, limit) {
  return store.transaction(() => {
    const rows = store.all('select * from outbox order by in_flight desc, position limit ?', [limit]);
    for (const row of rows) {
      if (!row.in_flight) store.run('update outbox set in_flight = 1 where collection = ? and record_id = ?', [row.collection, row.record_id]);
    }
    return rows.map(change);
  });
}

/** A change as pushed: its HLC stamp stands for its change id when it can, and a new
 * record's `base_version` 0 is left out (the server reads it so; issue 14, the wire). */
export function onTheWire(c) {
  const wire = { collection: c.collection, id: c.id, op: c.op };
  if (c.base_version) wire.base_version = c.base_version;
  if (c.hlc && validAsId(c.hlc)) wire.hlc = c.hlc;
  else {
    wire.change_id = c.change_id;
    if (c.hlc) wire.hlc = c.hlc;
  }
  if (c.data !== null && c.data !== undefined) wire.data = c.data;
  if (c.resolves) wire.resolves = c.resolves;
  return wire;
}

/** The answers to `batch` with the device's own collection, id and change id filled in:
 * a compact answer leaves them out (one result a change, in order). */
export function fullResults(results, batch) {
  const byWireId = new Map();
  for (const c of batch) {
    byWireId.set(c.change_id, c);
    if (c.hlc) byWireId.set(c.hlc, c);
  }
  const full = [];
  results.forEach((result, position) => {
    if (!result || typeof result !== 'object') return;
    const named = result.change_id;
    let c = named ? byWireId.get(named) : undefined;
    if (!c && !named && position < batch.length) c = batch[position];
    if (!c) return;
    full.push({ ...result, collection: c.collection, id: c.id, change_id: c.change_id });
  });
  return full;
}

/** Store the server's answers to one pushed batch, in one transaction. */
export function storeAnswers(store, results, sent) {
  const outcome = { accepted: 0, duplicates: 0, rejected: [], conflicts: [], unanswered: 0 };
  const byChangeId = new Map(sent.map((c) => [c.change_id, c]));
  const answered = new Set();
  store.transaction(() => {
    for (const result of results) {
      const c = byChangeId.get(result.change_id);
      if (!c) continue;
      answered.add(result.change_id);
      storeAnswer(store, c, result, outcome);
    }
  });
  outcome.unanswered = byChangeId.size - answered.size;
  return outcome;
}

function storeAnswer(store, c, result, outcome) {
  const current = entry(store, c.collection, c.id);
  if (!current || current.change.change_id !== c.change_id) return; // answered already
  const table = store.table(c.collection);
  const row = store.row(c.collection, c.id);
  let baseAfter = c.base_version;
  if (result.status === 'accepted' || result.status === 'duplicate') {
    if (result.status === 'accepted') outcome.accepted += 1;
    else outcome.duplicates += 1;
    baseAfter = result.version ?? c.base_version;
    if (c.op === 'resolve' && result.current && row) {
      // Keeping "theirs": adopt the server's version as it stands now.
      const cur = result.current;
      store.run(`update [${table}] set version = ?, deleted = ?, data = ?, theirs = null where id = ?`,
        [cur.version ?? baseAfter, cur.deleted ? 1 : 0, dumps(cur.data || {}), c.id]);
    } else if (row) {
      store.run(`update [${table}] set version = ?, theirs = null where id = ?`, [baseAfter, c.id]);
    }
    if (c.resolves) store.setConflictStatus(c.resolves, 'resolved');
  } else if (result.status === 'conflict') {
    const cur = result.current || null;
    const conflictId = result.conflict_id || newId();
    outcome.conflicts.push(conflictId);
    store.run(`insert into conflicts (id, collection, record_id, stored_version, incoming_op, incoming_data,
      base_version, origin, reason, status, resolution, theirs, version, seq)
      values (?, ?, ?, ?, ?, ?, ?, 'server', ?, 'open', null, ?, 1, ?)
      on conflict (id) do update set theirs = excluded.theirs, incoming_data = excluded.incoming_data`,
    [conflictId, c.collection, c.id, result.version || (cur && cur.version) || 0, c.op, dumps(c.data), c.base_version,
      String(result.code || 'stale_version'), dumps(cur), store.nextCounter('seq')]);
    if (cur && current.queued === null) {
      // The server's version was kept; the device mirrors it and the losing version lives
      // in the conflict until the doctor settles it.
      store.run(`insert into [${table}] (id, version, deleted, data, theirs) values (?, ?, ?, ?, null)
        on conflict (id) do update set version = excluded.version, deleted = excluded.deleted, data = excluded.data, theirs = null`,
      [c.id, cur.version ?? result.version ?? 0, cur.deleted ? 1 : 0, dumps(cur.data || {})]);
    } else if (cur) {
      store.run(`update [${table}] set theirs = ? where id = ?`, [dumps(cur), c.id]);
    }
  } else {
    const rejection = { collection: c.collection, record_id: c.id, change_id: c.change_id, op: c.op,
      code: String(result.code || 'validation_failed'), errors: result.errors || {} };
    outcome.rejected.push(rejection);
    if (current.queued === null) {
      store.run(`insert or replace into rejected (collection, record_id, change_id, op, base_version, data, code, errors, rejected_at)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [c.collection, c.id, c.change_id, c.op, c.base_version, dumps(c.data),
        rejection.code, dumps(rejection.errors), new Date().toISOString()]);
    }
  }
  if (current.queued === null) {
    store.run('delete from outbox where collection = ? and record_id = ?', [c.collection, c.id]);
    return;
  }
  // The edit made while this change was in flight goes out now, as a new change.
  const q = current.queued;
  store.run(`update outbox set change_id = ?, op = ?, base_version = ?, data = ?, hlc = ?, resolves = ?,
    in_flight = 0, queued = null, position = ? where collection = ? and record_id = ?`,
  [newId(), q.op, baseAfter, dumps(q.data), q.hlc, q.resolves ?? null, store.nextCounter('outbox_position'), c.collection, c.id]);
}

/** Settle an open conflict: `mine` queues the device's version on top of the server's,
 * `theirs` adopts the server's version and queues a `resolve` change. */
export function resolve(store, conflictId, keep) {
  if (keep !== 'mine' && keep !== 'theirs') throw new Error("keep must be 'mine' or 'theirs'");
  return store.transaction(() => {
    const view = store.conflicts().find((c) => c.id === conflictId);
    if (!view) return null;
    const theirs = view.theirs || {};
    const serverVersion = Math.max(view.stored_version, Number(theirs.version || 0));
    const table = store.table(view.collection);
    const stamp = store.tick();
    const put = (deleted, data) => store.run(`insert into [${table}] (id, version, deleted, data, hlc, seq, theirs)
      values (?, ?, ?, ?, ?, ?, null) on conflict (id) do update set version = excluded.version, deleted = excluded.deleted,
      data = excluded.data, hlc = excluded.hlc, seq = excluded.seq, theirs = null`,
    [view.record_id, serverVersion, deleted ? 1 : 0, dumps(data), stamp, store.nextCounter('seq')]);
    store.run('delete from outbox where collection = ? and record_id = ? and in_flight = 0', [view.collection, view.record_id]);
    if (keep === 'mine') {
      const deleted = view.mine.op === 'delete';
      const data = deleted ? null : view.mine.data || {};
      put(deleted, data ?? theirs.data ?? {});
      queue(store, view.collection, view.record_id, deleted ? 'delete' : 'upsert', data, stamp,
        { baseVersion: serverVersion, resolves: view.id });
    } else {
      // The conflict's snapshot of the server's version may be older than what a later
      // pull brought (edited or deleted again on the server since): keeping "theirs" never
      // moves the device back to an older version (as offline_client/local/conflicts.py).
      const row = store.row(view.collection, view.record_id);
      const held = row ? row.version : 0;
      if (theirs.data && Number(theirs.version || 0) >= held) put(Boolean(theirs.deleted), theirs.data);
      queue(store, view.collection, view.record_id, 'resolve', null, stamp, { baseVersion: serverVersion, resolves: view.id });
    }
    store.setConflictStatus(view.id, 'resolved', keep);
    const e = entry(store, view.collection, view.record_id);
    return e ? e.change : null;
  });
}
