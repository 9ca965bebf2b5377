// Tiny DOM helpers: elements built with text nodes only (never HTML from data), so the
// strict Content-Security-Policy and the records' own text can never run as script.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter(Boolean));
}

/** "2026-03-09T08:00:00+08:00" → "03-09 08:00" as the doctor reads it. */
export function shortTime(iso) {
  return iso ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : '';
}

/** The device's now as ISO 8601 with its own UTC offset, to the second. */
export function localIso(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const local = new Date(date.getTime() + offset * 60000).toISOString().slice(0, 19);
  return `${local}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** A datetime-local input's value (no offset) as ISO with the device's offset then. */
export function fromInput(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : localIso(date);
}

export function toInput(iso) {
  return iso ? iso.slice(0, 19) : '';
}
