// The service worker's registration and the safe update: a new version installs in the
// background and waits; the app tells it to take over only at a safe moment (no visit
// open, no form being filled), then reloads once. A doctor in the middle of a visit is
// never reloaded under their fingers (Workbox's "prompt for update" pattern, without it).
const CHECK_EVERY_MS = 60 * 1000;

export async function watchForUpdates({ safeMoment, onWaiting, url = './sw.js' }) {
  if (!('serviceWorker' in navigator)) return null;
  let registration;
  try {
    registration = await navigator.serviceWorker.register(url, { scope: './', updateViaCache: 'none' });
  } catch {
    return null; // offline on a first open without a worker: nothing to do
  }
  // Reload once when the version this page asked for takes over (not when the very first
  // worker claims a page that had none: that page is already the current version).
  let asked = false;
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (reloading || !asked) return;
    reloading = true;
    window.location.reload();
  });
  const offer = async () => {
    const waiting = registration.waiting;
    if (!waiting || !navigator.serviceWorker.controller) return;
    if (await safeMoment()) {
      asked = true;
      waiting.postMessage({ type: 'SKIP_WAITING' });
    } else onWaiting();
  };
  registration.addEventListener('updatefound', () => {
    const installing = registration.installing;
    if (installing) installing.addEventListener('statechange', () => installing.state === 'installed' && offer());
  });
  await offer();
  setInterval(() => {
    if (navigator.onLine) registration.update().catch(() => {});
    offer();
  }, CHECK_EVERY_MS);
  // The app calls `offer` again when a moment becomes safe (a visit checked out, a form
  // saved or left), so a waiting version takes over then.
  return { registration, offer };
}
