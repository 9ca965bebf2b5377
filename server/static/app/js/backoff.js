// When to try a failed sync again: exponential backoff with full jitter (AWS Architecture
// Blog, "Exponential Backoff and Jitter"), so a county's tablets that lost the network
// together do not all come back in the same second. A server's Retry-After is a floor.
export const BASE_MS = 2000;
export const CAP_MS = 5 * 60 * 1000;

export function retryDelay(attempt, { retryAfterS = null, random = Math.random, base = BASE_MS, cap = CAP_MS } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  const jittered = Math.floor(random() * ceiling);
  const floor = retryAfterS ? retryAfterS * 1000 : 0;
  return Math.max(floor, jittered, 250);
}

/** Is a failure worth retrying on its own? A network failure, a 5xx or a 429 is; a
 * refused sign-in or a bad request is not (a person has to act). */
export function retryable(error) {
  if (!error || error.kind === 'offline') return true;
  const status = error.status || 0;
  return status >= 500 || status === 429 || status === 408;
}
