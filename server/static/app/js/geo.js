// The device's position at check-in (Geolocation API). A denied, slow or unavailable
// position never blocks the visit: it is recorded as missing and shown.
export const POSITION_TIMEOUT_MS = 8000;
const REASONS = { 1: 'denied', 2: 'unavailable', 3: 'timeout' };

export function currentPosition({ timeout = POSITION_TIMEOUT_MS, geolocation = globalThis.navigator && navigator.geolocation } = {}) {
  return new Promise((resolve) => {
    if (!geolocation) {
      resolve({ missing: 'unavailable' });
      return;
    }
    let done = false;
    const finish = (value) => {
      if (!done) {
        done = true;
        resolve(value);
      }
    };
    // A browser that never answers (a prompt left open) still lets the visit go ahead.
    setTimeout(() => finish({ missing: 'timeout' }), timeout + 500);
    geolocation.getCurrentPosition(
      (p) => finish({ lat: round(p.coords.latitude, 6), lon: round(p.coords.longitude, 6), accuracy_m: round(p.coords.accuracy, 1) }),
      (error) => finish({ missing: REASONS[error.code] || 'unavailable' }),
      { enableHighAccuracy: true, timeout, maximumAge: 60000 },
    );
  });
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
