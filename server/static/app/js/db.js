// The page's handle on the database worker: `await db.call('save', 'visits', id, data)`,
// or the proxy `db.store.save('visits', id, data)` that sync.js and the screens use.
export function openDatabase(url = new URL('./db-worker.js', import.meta.url)) {
  const worker = new Worker(url, { type: 'module' });
  const waiting = new Map();
  let next = 0;
  worker.onmessage = (event) => {
    const { id, ok, result, error } = event.data;
    const pending = waiting.get(id);
    if (!pending) return;
    waiting.delete(id);
    if (ok) pending.resolve(result);
    else pending.reject(new Error(error));
  };
  worker.onerror = (event) => {
    for (const pending of waiting.values()) pending.reject(new Error(event.message || 'database worker failed'));
    waiting.clear();
  };
  const call = (method, ...args) => new Promise((resolve, reject) => {
    next += 1;
    waiting.set(next, { resolve, reject });
    worker.postMessage({ id: next, method, args });
  });
  const store = new Proxy({}, { get: (_, method) => (...args) => call(method, ...args) });
  return { call, store, worker };
}
