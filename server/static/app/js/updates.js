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
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (reloading || !hadController) return;
    reloading = true;
    window.location.reload();
  });
  const hadController = Boolean(navigator.serviceWorker.controller);
  const offer = async () => {
    const waiting = registration.waiting;
    if (!waiting || !navigator.serviceWorker.controller) return;
    if (await safeMoment()) waiting.postMessage({ type: 'SKIP_WAITING' });
    else onWaiting();
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
  return registration;
}
