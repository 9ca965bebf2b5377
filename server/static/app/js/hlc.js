// The device's hybrid logical clock, as sync/clock.py defines it: `<millis>-<counter>-<node>`,
// zero-padded so the string order is the clock order. It persists (the store's meta) and
// only moves forward, so a stamp is never given twice and can stand for a change id.
const WIDTH_MS = 15;
const WIDTH_COUNTER = 10;

export function encode({ millis, counter, node }) {
  return `${String(millis).padStart(WIDTH_MS, '0')}-${String(counter).padStart(WIDTH_COUNTER, '0')}-${node}`;
}

export function decode(text) {
  const parts = typeof text === 'string' ? text.split('-') : [];
  if (parts.length < 3 || !/^\d+$/.test(parts[0]) || !/^\d+$/.test(parts[1])) {
    throw new Error(`not an HLC timestamp: ${text}`);
  }
  return { millis: Number(parts[0]), counter: Number(parts[1]), node: parts.slice(2).join('-') };
}

/** The node id is the last field of the encoding: no '-' in it (as sync/clock.py). */
export function nodeOf(deviceId) {
  return deviceId.replace(/-/g, '') || 'node';
}

/** Stamp a local event after `last` (an encoded stamp or null). */
export function tick(last, node, wall = Date.now()) {
  const prev = last ? decode(last) : { millis: 0, counter: 0 };
  if (wall > prev.millis) return encode({ millis: wall, counter: 0, node });
  return encode({ millis: prev.millis, counter: prev.counter + 1, node });
}

/** Merge a remote stamp: the result is after `last`, `remote` and the wall clock. */
export function receive(last, remote, node, wall = Date.now()) {
  const mine = last ? decode(last) : { millis: 0, counter: 0 };
  const theirs = decode(remote);
  const top = Math.max(wall, mine.millis, theirs.millis);
  let counter = 0;
  if (top === mine.millis && top === theirs.millis) counter = Math.max(mine.counter, theirs.counter) + 1;
  else if (top === mine.millis) counter = mine.counter + 1;
  else if (top === theirs.millis) counter = theirs.counter + 1;
  return encode({ millis: top, counter, node });
}

/** A stamp the server takes as a change id (sync.records.valid_id: at most 64 characters). */
export function validAsId(stamp) {
  return typeof stamp === 'string' && stamp.length <= 64 && /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(stamp);
}
