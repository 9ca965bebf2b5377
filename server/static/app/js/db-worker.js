// The database worker: the official SQLite WebAssembly build with the OPFS "opfs-sahpool"
// VFS (a dedicated worker, no COOP/COEP headers needed), the Store over it, and a message
// call per Store method. Where OPFS is missing or refused, the same database lives in
// memory and every write is saved whole to IndexedDB before it is answered: a durable
// store, never memory only (docs/app.md says which browsers get which).
import sqlite3InitModule from '../vendor/sqlite3.mjs';
import { Store } from './store.js';

const DB_NAME = '/zhuxun.sqlite3';
const IDB_NAME = 'zhuxun';
const IDB_STORE = 'database';
const READS = new Set(['get', 'records', 'listing', 'status', 'conflicts', 'sendBacks', 'session', 'plan', 'forms',
  'openVisit', 'deviceId', 'cursor', 'clock', 'outboxCount', 'syncState', 'rejection', 'meta']);

let store = null;
let sqlite3 = null;
let mode = null;

let connection = null;

function idb() {
  // One connection: its write transactions complete in the order they were made.
  connection = connection || new Promise((resolve, reject) => {
    const request = indexedDB.open(IDB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(IDB_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return connection;
}

async function idbGet() {
  const conn = await idb();
  return new Promise((resolve, reject) => {
    const request = conn.transaction(IDB_STORE).objectStore(IDB_STORE).get('db');
    request.onsuccess = () => resolve(request.result || null);
    request.onerror = () => reject(request.error);
  });
}

async function idbPut(bytes) {
  const conn = await idb();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction(IDB_STORE, 'readwrite');
    tx.objectStore(IDB_STORE).put(bytes, 'db');
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

async function openOpfs() {
  // Another tab of the app may still hold the pool for a moment after it closed: retry.
  let lastError = null;
  for (let attempt = 0; attempt < 12; attempt += 1) {
    try {
      const pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'zhuxun-pool', initialCapacity: 6 });
      return new pool.OpfsSAHPoolDb(DB_NAME);
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 250 * (attempt + 1)));
    }
  }
  throw lastError;
}

async function openIndexedDb() {
  const db = new sqlite3.oo1.DB(':memory:', 'c');
  const saved = await idbGet();
  if (saved) {
    const bytes = new Uint8Array(saved);
    const pointer = sqlite3.wasm.allocFromTypedArray(bytes);
    const flags = sqlite3.capi.SQLITE_DESERIALIZE_FREEONCLOSE | sqlite3.capi.SQLITE_DESERIALIZE_RESIZEABLE;
    const rc = sqlite3.capi.sqlite3_deserialize(db.pointer, 'main', pointer, bytes.length, bytes.length, flags);
    db.checkRc(rc);
  }
  return db;
}

async function open({ forceFallback = false } = {}) {
  sqlite3 = await sqlite3InitModule({ print: () => {}, printErr: () => {} });
  let db = null;
  let why = null;
  if (!forceFallback && typeof navigator !== 'undefined' && navigator.storage && navigator.storage.getDirectory) {
    try {
      db = await openOpfs();
      mode = 'opfs';
    } catch (error) {
      why = String(error && error.message ? error.message : error);
    }
  } else {
    why = forceFallback ? 'asked for' : 'no OPFS in this browser';
  }
  if (!db) {
    db = await openIndexedDb();
    mode = 'indexeddb';
  }
  db.exec('PRAGMA foreign_keys = ON');
  store = new Store(db);
  if (mode === 'indexeddb') await idbPut(sqlite3.capi.sqlite3_js_db_export(db.pointer));
  return { mode, why, sqlite: sqlite3.version.libVersion };
}

self.onmessage = async (event) => {
  const { id, method, args = [] } = event.data;
  try {
    let result;
    if (method === 'open') result = await open(args[0] || {});
    else {
      if (!store) throw new Error('the database is not open');
      if (typeof store[method] !== 'function' || method.startsWith('_')) throw new Error(`no such store call: ${method}`);
      result = store[method](...args);
      if (mode === 'indexeddb' && !READS.has(method)) await idbPut(sqlite3.capi.sqlite3_js_db_export(store.db.pointer));
    }
    self.postMessage({ id, ok: true, result });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error && error.message ? error.message : error) });
  }
};
