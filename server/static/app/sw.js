// The app's service worker: the shell precached (every file of the app, the SQLite
// WebAssembly included), the API network-first, and a new version that waits until
// the app says it is a safe moment (updates.js). The server fills in the version and the
// file list from the files it serves (server/app_shell.py), so neither is kept by hand.
const VERSION = '__SHELL_VERSION__';
const SHELL = __SHELL_FILES__;
const CACHE = `zhuxun-app-${VERSION}`;
const API_CACHE = 'zhuxun-api';
const CACHED_API = ['/api/v1/forms'];

self.addEventListener('install', (event) => {
  // `no-cache`: each file is revalidated by its ETag, so the files the page has just
  // loaded cost a 304 each, not a second download (the WebAssembly is 390 kB gzipped).
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL.map((path) => new Request(path, { cache: 'no-cache' })))));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('zhuxun-app-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok && CACHED_API.includes(new URL(request.url).pathname)) {
      const cache = await caches.open(API_CACHE);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await caches.match(request, { cacheName: API_CACHE });
    if (cached) return cached;
    throw error;
  }
}

async function shellFirst(request) {
  const cache = await caches.open(CACHE);
  const url = new URL(request.url);
  const key = request.mode === 'navigate' ? './' : url.pathname;
  const cached = await cache.match(key, { ignoreSearch: true });
  if (cached) return cached;
  return fetch(request);
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || event.request.method !== 'GET') return;
  if (url.pathname.startsWith('/api/')) {
    // Network-first where a cached answer can stand in (the form definitions); every other
    // API call (push, pull, the plan) goes straight to the network, never through a cache:
    // the app keeps that data in SQLite, and an old pull page must never be replayed.
    if (CACHED_API.includes(url.pathname)) event.respondWith(networkFirst(event.request));
  } else if (url.pathname.startsWith('/app/')) {
    event.respondWith(shellFirst(event.request));
  }
});
