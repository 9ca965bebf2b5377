// The device's SQLite copy, with the same tables and meaning as the Python client's store
// (offline_client/local/) where they overlap: one table a collection, `outbox`,
// `rejected`, `conflicts`, `send_backs`, `meta` (device id, clock, cursor, session, plan).
// Synchronous over an sqlite3 `oo1.DB`: it runs inside the database worker (db-worker.js)
// in the browser and directly in Node's tests. Every write of a record and the change it
// queues, every stored answer, every pulled page with its cursor is one transaction.
import * as hlc from './hlc.js';
import * as outbox from './outbox.js';

export const DEVICE_COLLECTIONS = ['visits', 'leave', 'trainings'];
export const COLLECTIONS = [...DEVICE_COLLECTIONS, 'places', 'assignments', 'flags', 'doctors', 'reviews'];
export const SEND_BACK = 'send_back';

const dumps = (value) => (value === null || value === undefined ? null : JSON.stringify(value));
const loads = (text) => (text === null || text === undefined ? null : JSON.parse(text));
const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export function newId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class UnknownCollection extends Error {}

export class Store {
  constructor(db) {
    this.db = db;
    this.createSchema();
  }

  // -- plumbing ---------------------------------------------------------------------------

  all(sql, bind = []) {
    return this.db.selectObjects(sql, bind);
  }

  one(sql, bind = []) {
    return this.all(sql, bind)[0] ?? null;
  }

  run(sql, bind = []) {
    this.db.exec({ sql, bind });
  }

  /** One write transaction; nested use joins the outer one. */
  transaction(fn) {
    if (this.inTransaction) return fn();
    this.inTransaction = true;
    this.run('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.run('COMMIT');
      return result;
    } catch (error) {
      this.run('ROLLBACK');
      throw error;
    } finally {
      this.inTransaction = false;
    }
  }

  table(collection) {
    if (!COLLECTIONS.includes(collection)) throw new UnknownCollection(collection);
    return collection;
  }

  createSchema() {
    this.transaction(() => {
      for (const name of COLLECTIONS) {
        this.run(`create table if not exists [${name}] (id text primary key, version integer not null,
          deleted integer not null, data text, hlc text, seq integer, theirs text)`);
      }
      this.run(`create table if not exists outbox (collection text, record_id text, change_id text not null,
        op text not null, base_version integer not null, data text, hlc text, resolves text,
        in_flight integer not null, queued text, position integer not null,
        primary key (collection, record_id))`);
      this.run('create index if not exists outbox_position on outbox (position)');
      this.run(`create table if not exists rejected (collection text, record_id text, change_id text,
        op text, base_version integer, data text, code text, errors text, rejected_at text,
        primary key (collection, record_id))`);
      this.run(`create table if not exists conflicts (id text primary key, collection text, record_id text,
        stored_version integer, incoming_op text, incoming_data text, base_version integer,
        origin text, reason text, status text, resolution text, theirs text, version integer, seq integer)`);
      this.run('create table if not exists meta (key text primary key, value text)');
      this.run(`create table if not exists send_backs (id text primary key, visit_id text,
        baseline_version integer, received_at text, cleared_at text, cleared_because text)`);
      if (this.meta('device_id') === null) this.setMeta('device_id', `web${newId().slice(0, 12)}`);
    });
  }

  meta(key) {
    const row = this.one('select value from meta where key = ?', [key]);
    return row ? row.value : null;
  }

  setMeta(key, value) {
    if (value === null || value === undefined) this.run('delete from meta where key = ?', [key]);
    else this.run('insert into meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value', [key, String(value)]);
  }

  metaJson(key) {
    return loads(this.meta(key));
  }

  setMetaJson(key, value) {
    this.setMeta(key, dumps(value));
  }

  nextCounter(key) {
    const value = Number(this.meta(key) || 0) + 1;
    this.setMeta(key, value);
    return value;
  }

  // -- identity and clock -----------------------------------------------------------------

  deviceId() {
    return this.meta('device_id');
  }

  tick() {
    return this.transaction(() => {
      const stamp = hlc.tick(this.meta('hlc'), hlc.nodeOf(this.deviceId()));
      this.setMeta('hlc', stamp);
      return stamp;
    });
  }

  clock() {
    return this.meta('hlc');
  }

  receiveClock(remote) {
    if (!remote) return;
    try {
      this.transaction(() => this.setMeta('hlc', hlc.receive(this.meta('hlc'), remote, hlc.nodeOf(this.deviceId()))));
    } catch {
      // a malformed server clock changes nothing (as the Python client)
    }
  }

  cursor() {
    return this.meta('cursor');
  }

  // -- the session and the week plan, kept on the device for offline use -------------------

  session() {
    return this.metaJson('session');
  }

  setSession(value) {
    this.setMetaJson('session', value);
  }

  plan() {
    return this.metaJson('plan');
  }

  setPlan(value) {
    this.setMetaJson('plan', value);
  }

  forms() {
    return this.metaJson('forms');
  }

  setForms(value) {
    this.setMetaJson('forms', value);
  }

  /** The visit checked in and not yet checked out: a draft, never in the outbox (the form
   * needs a check-out), but stored, so it survives a reload or a flat battery. */
  openVisit() {
    return this.metaJson('open_visit');
  }

  setOpenVisit(value) {
    this.setMetaJson('open_visit', value);
  }

  // -- records ----------------------------------------------------------------------------

  row(collection, id) {
    return this.one(`select * from [${this.table(collection)}] where id = ?`, [id]);
  }

  static record(collection, row) {
    return { collection, id: row.id, version: row.version, deleted: Boolean(row.deleted), data: loads(row.data) || {}, hlc: row.hlc };
  }

  get(collection, id) {
    const row = this.row(collection, id);
    return row ? Store.record(collection, row) : null;
  }

  records(collection, { includeDeleted = false } = {}) {
    const where = includeDeleted ? '' : 'where deleted = 0';
    return this.all(`select * from [${this.table(collection)}] ${where} order by id`).map((row) => Store.record(collection, row));
  }

  /** Write a record on the device and queue its upsert, in one transaction. */
  save(collection, id, data) {
    if (!DEVICE_COLLECTIONS.includes(collection)) throw new UnknownCollection(collection);
    return this.transaction(() => {
      const row = this.row(collection, id);
      if (row && row.deleted) throw new Error(`${collection} ${id} was deleted`);
      const version = row ? row.version : 0;
      const stamp = this.tick();
      this.run(`insert into [${collection}] (id, version, deleted, data, hlc, seq, theirs) values (?, ?, 0, ?, ?, ?, ?)
        on conflict (id) do update set data = excluded.data, hlc = excluded.hlc, seq = excluded.seq`,
      [id, version, dumps(data), stamp, this.nextCounter('seq'), row ? row.theirs : null]);
      outbox.queue(this, collection, id, 'upsert', data, stamp, { baseVersion: version });
      this.clearSendBacks(collection, id, 'edited on this device');
      return this.get(collection, id);
    });
  }

  /** Delete a record and queue its delete; one the server never accepted is forgotten. */
  remove(collection, id) {
    this.transaction(() => {
      const row = this.row(collection, id);
      if (!row || row.deleted) return;
      const entry = outbox.entry(this, collection, id);
      this.clearSendBacks(collection, id, 'deleted on this device');
      if (row.version === 0 && (!entry || !entry.in_flight)) {
        this.run(`delete from [${collection}] where id = ?`, [id]);
        this.run('delete from outbox where collection = ? and record_id = ?', [collection, id]);
        this.dropRejection(collection, id);
        return;
      }
      const stamp = this.tick();
      this.run(`update [${collection}] set deleted = 1, hlc = ?, seq = ? where id = ?`, [stamp, this.nextCounter('seq'), id]);
      outbox.queue(this, collection, id, 'delete', null, stamp, { baseVersion: row.version });
    });
  }

  // -- rejections, conflicts, send-backs --------------------------------------------------

  dropRejection(collection, id) {
    this.run('delete from rejected where collection = ? and record_id = ?', [collection, id]);
  }

  rejection(collection, id) {
    const row = this.one('select * from rejected where collection = ? and record_id = ?', [collection, id]);
    return row ? { ...row, data: loads(row.data), errors: loads(row.errors) || {} } : null;
  }

  setConflictStatus(id, status, resolution = null) {
    this.run(`update conflicts set status = ?, resolution = coalesce(?, resolution),
      version = coalesce(version, 1) + 1, seq = ? where id = ?`, [status, resolution, this.nextCounter('seq'), id]);
  }

  /** Open (or all) conflicts with both sides: mine (the losing change) and theirs. */
  conflicts({ status = 'open' } = {}) {
    const rows = status ? this.all('select * from conflicts where status = ? order by seq', [status]) : this.all('select * from conflicts order by seq');
    return rows.map((row) => ({
      id: row.id,
      collection: row.collection,
      record_id: row.record_id,
      status: row.status,
      resolution: row.resolution,
      reason: row.reason,
      base_version: row.base_version,
      stored_version: row.stored_version,
      mine: { op: row.incoming_op, data: loads(row.incoming_data) },
      theirs: loads(row.theirs) ?? this.serverCopy(row.collection, row.record_id),
    }));
  }

  serverCopy(collection, id) {
    let row;
    try {
      row = this.row(collection, id);
    } catch {
      return null;
    }
    if (!row) return null;
    if (row.theirs) return loads(row.theirs);
    if (outbox.entry(this, collection, id)) return null;
    return { version: row.version, deleted: Boolean(row.deleted), data: loads(row.data) };
  }

  receiveSendBack(reviewId, data) {
    const visitId = data.visit;
    if (data.kind !== SEND_BACK || typeof visitId !== 'string') return;
    if (this.one('select id from send_backs where id = ?', [reviewId])) return;
    const visit = this.row('visits', visitId);
    const baseline = Math.max(Number(data.visit_version || 0), visit ? visit.version : 0);
    this.run('insert into send_backs (id, visit_id, baseline_version, received_at) values (?, ?, ?, ?)', [reviewId, visitId, baseline, nowIso()]);
  }

  clearSendBack(id, because) {
    this.run('update send_backs set cleared_at = ?, cleared_because = ? where id = ? and cleared_at is null', [nowIso(), because, id]);
  }

  clearSendBacks(collection, id, because) {
    if (collection !== 'visits') return;
    for (const row of this.all('select id from send_backs where visit_id = ? and cleared_at is null', [id])) {
      this.clearSendBack(row.id, because);
    }
  }

  /** Visits sent back for correction that the doctor has not edited since. */
  sendBacks() {
    return this.all(`select r.id, r.data from send_backs s join reviews r on r.id = s.id
      where s.cleared_at is null and r.deleted = 0 order by s.received_at, r.id`).map((row) => {
      const data = loads(row.data) || {};
      return { id: row.id, visit: String(data.visit), comment: String(data.comment || ''), by: String(data.by || ''), at: String(data.at || '') };
    });
  }

  // -- pulling ----------------------------------------------------------------------------

  /** Apply one pulled page and save its cursor, in one transaction. A record with a change
   * pending here keeps the local version; the server's is kept beside it (`theirs`). */
  applyPulled(changes, cursor) {
    this.transaction(() => {
      for (const wire of changes) {
        const { collection, id } = wire;
        if (typeof collection !== 'string' || typeof id !== 'string') continue;
        if (collection === 'conflicts') {
          this.applyPulledConflict(id, wire);
          continue;
        }
        if (!COLLECTIONS.includes(collection)) continue; // a collection a newer server sends
        const theirs = { version: wire.version || 0, deleted: Boolean(wire.deleted), data: wire.data || {} };
        const pending = outbox.entry(this, collection, id) !== null || this.rejection(collection, id) !== null;
        if (collection === 'reviews') {
          this.receiveSendBack(id, theirs.data);
          if (theirs.deleted || theirs.data.status === 'resolved') this.clearSendBack(id, 'resolved on the server');
        } else if (collection === 'visits') {
          for (const row of this.all('select * from send_backs where visit_id = ? and cleared_at is null', [id])) {
            if (theirs.deleted) this.clearSendBack(row.id, 'deleted');
            else if (theirs.version > row.baseline_version) this.clearSendBack(row.id, `changed since (version ${theirs.version})`);
          }
        }
        if (pending && this.row(collection, id)) {
          this.run(`update [${collection}] set theirs = ? where id = ?`, [dumps(theirs), id]);
          continue;
        }
        this.run(`insert into [${collection}] (id, version, deleted, data, hlc, seq, theirs) values (?, ?, ?, ?, ?, null, null)
          on conflict (id) do update set version = excluded.version, deleted = excluded.deleted,
          data = excluded.data, hlc = excluded.hlc, theirs = null`,
        [id, theirs.version, theirs.deleted ? 1 : 0, dumps(theirs.data), wire.hlc ?? null]);
      }
      this.setMeta('cursor', cursor);
    });
    return changes.length;
  }

  applyPulledConflict(id, wire) {
    const data = wire.data || {};
    if (wire.deleted) {
      this.setConflictStatus(id, 'resolved');
      return;
    }
    const values = [data.collection || '', data.record_id || '', data.stored_version || 0, data.incoming_op || 'upsert',
      dumps(data.incoming_data), data.base_version || 0, data.origin || 'server', data.reason || '',
      data.status || 'open', data.resolution ?? null, wire.version || 1];
    if (this.one('select id from conflicts where id = ?', [id])) {
      this.run(`update conflicts set collection = ?, record_id = ?, stored_version = ?, incoming_op = ?, incoming_data = ?,
        base_version = ?, origin = ?, reason = ?, status = ?, resolution = ?, version = ? where id = ?`, [...values, id]);
    } else {
      this.run(`insert into conflicts (collection, record_id, stored_version, incoming_op, incoming_data, base_version,
        origin, reason, status, resolution, version, id, theirs, seq) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?)`,
      [...values, id, this.nextCounter('seq')]);
    }
  }

  // -- what the screens show --------------------------------------------------------------

  /** pending | in_flight | rejected | conflict | sent_back | synced */
  syncState(collection, id) {
    if (this.rejection(collection, id)) return 'rejected';
    const entry = outbox.entry(this, collection, id);
    if (entry) return entry.in_flight ? 'in_flight' : 'pending';
    if (this.one("select id from conflicts where status = 'open' and collection = ? and record_id = ?", [collection, id])) return 'conflict';
    if (collection === 'visits' && this.one('select id from send_backs where visit_id = ? and cleared_at is null', [id])) return 'sent_back';
    return 'synced';
  }

  /** The device's records of a collection with their sync state and what explains it. */
  listing(collection) {
    const conflicts = this.conflicts().filter((c) => c.collection === collection);
    const sendBacks = collection === 'visits' ? this.sendBacks() : [];
    return this.records(collection).map((record) => ({
      ...record,
      state: this.syncState(collection, record.id),
      rejection: this.rejection(collection, record.id),
      conflict: conflicts.find((c) => c.record_id === record.id) || null,
      sendBack: sendBacks.find((s) => s.visit === record.id) || null,
    })).concat(conflicts.filter((c) => !this.row(collection, c.record_id) || this.row(collection, c.record_id).deleted).map((c) => ({
      collection, id: c.record_id, version: c.stored_version, deleted: true, data: c.mine.data || {}, state: 'conflict', rejection: null, conflict: c, sendBack: null,
    })));
  }

  status() {
    return {
      device_id: this.deviceId(),
      cursor: this.cursor(),
      pending: outbox.count(this),
      rejected: this.one('select count(*) as n from rejected').n,
      conflicts: this.one("select count(*) as n from conflicts where status = 'open'").n,
      last_sync_at: this.meta('last_sync_at'),
    };
  }

  // The outbox, as methods a caller of the worker can reach (outbox.js holds the logic).
  outboxCount() {
    return outbox.count(this);
  }

  takeBatch(limit) {
    return outbox.takeBatch(this, limit);
  }

  storeAnswers(results, sent) {
    return outbox.storeAnswers(this, results, sent);
  }

  resolve(conflictId, keep) {
    return outbox.resolve(this, conflictId, keep);
  }

  markSynced(when = nowIso()) {
    this.setMeta('last_sync_at', when);
  }
}
