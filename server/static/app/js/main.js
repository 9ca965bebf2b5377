// The doctor's app: boots the database worker, the service worker and the sync loop, and
// draws the screens (sign-in, home with this week's duty, check in/out, the visit and
// leave lists with their sync states, the forms). No framework: the screens are redrawn
// from the store after every change.
import { openDatabase } from './db.js';
import { Api } from './api.js';
import { Syncer } from './sync.js';
import { validate, field } from './forms.js';
import { currentPosition } from './geo.js';
import { chinaToday, weekStanding } from './week.js';
import { newId } from './store.js';
import { errorText, label, language, setLanguage, t } from './i18n.js';
import { fromInput, h, localIso, mount, shortTime, toInput } from './ui.js';
import { watchForUpdates } from './updates.js';

const app = {
  db: null, store: null, api: null, syncer: null, storage: null, persisted: null,
  view: 'home', editing: null, errors: {}, notice: null, updateWaiting: false, forms: null,
};
window.zhuxun = app; // the page tests and the benchmark read the state through this

const root = () => document.getElementById('view');

function syncLine(state, status) {
  const pending = status.pending ? ` · ${t('pendingN', { n: status.pending })}` : '';
  if (state.phase === 'offline' || (state.phase !== 'syncing' && !navigator.onLine)) return `${t('offline')}${pending}`;
  switch (state.phase) {
    case 'syncing': return t('syncing');
    case 'waiting': return t('waiting', { s: Math.max(1, Math.round((state.retryAt - Date.now()) / 1000)) });
    case 'stopped': return t('stopped', { e: state.error });
    case 'signed_out': return t('signed_out');
    default:
      return status.pending ? t('pendingN', { n: status.pending })
        : `${t('synced')} · ${t('lastSync')} ${status.last_sync_at ? shortTime(toLocal(status.last_sync_at)) : t('never')}`;
  }
}

function toLocal(utcIso) {
  return localIso(new Date(utcIso));
}

async function drawHeader() {
  const status = await app.store.status();
  const state = app.syncer ? app.syncer.state : { phase: 'idle' };
  const header = document.getElementById('bar');
  mount(header,
    h('strong', { class: 'brand' }, t('app')),
    h('span', { id: 'sync-status', class: `sync ${state.phase}`, 'data-phase': state.phase, 'data-pending': status.pending }, syncLine(state, status)),
    h('button', { id: 'sync-now', type: 'button', class: 'small', onclick: () => app.syncer && app.syncer.now() }, t('sync')),
    h('button', { id: 'lang', type: 'button', class: 'small', onclick: toggleLanguage }, t('language')));
}

function toggleLanguage() {
  const next = language() === 'zh' ? 'en' : 'zh';
  setLanguage(next);
  localStorage.setItem('zhuxun.lang', next);
  document.documentElement.lang = next === 'zh' ? 'zh-CN' : 'en';
  render();
}

// --- sign-in -------------------------------------------------------------------------------

function loginView() {
  const error = app.notice ? h('p', { class: 'error', role: 'alert' }, app.notice) : null;
  return h('form', { id: 'login', class: 'card', onsubmit: signIn },
    h('h1', {}, t('signIn')),
    h('label', {}, t('username'), h('input', { name: 'username', autocomplete: 'username', required: true })),
    h('label', {}, t('password'), h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    error,
    h('button', { type: 'submit', class: 'primary' }, t('signIn')));
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const answer = await app.api.login(String(form.get('username')), String(form.get('password')));
    await app.store.setSession({ access_token: answer.access_token, refresh_token: answer.refresh_token, user: answer.user });
    app.notice = null;
    await loadForms();
    app.view = 'home';
    startSync();
    await app.syncer.now();
  } catch (error) {
    app.notice = error.kind === 'offline' ? t('needNetwork') : (language() === 'zh' && error.messageZh) || t('badLogin');
  }
  render();
}

async function loadForms() {
  try {
    const forms = await app.api.forms();
    await app.store.setForms(forms);
  } catch {
    // offline: the copy kept from the last time serves
  }
  app.forms = await app.store.forms();
}

// --- home ----------------------------------------------------------------------------------

async function homeView() {
  const session = await app.store.session();
  const [visits, leave, assignments, places, plan, open] = await Promise.all([
    app.store.listing('visits'), app.store.listing('leave'), app.store.records('assignments'),
    app.store.records('places'), app.store.plan(), app.store.openVisit()]);
  const placeName = new Map(places.map((p) => [p.id, p.data.name || p.id]));
  const doctor = session.user.doctor;
  const today = chinaToday();
  const current = assignments.filter((a) => a.data.doctor === doctor && a.data.start <= today && (!a.data.end || today <= a.data.end));
  return [
    storageNotice(),
    app.updateWaiting ? h('p', { class: 'notice', id: 'update-ready' }, t('updateReady')) : null,
    app.notice ? h('p', { class: 'notice', id: 'notice', role: 'status' }, app.notice) : null,
    weekCard(plan, visits, today, doctor),
    open ? openVisitCard(open, placeName) : checkInCard(current, placeName),
    h('div', { class: 'actions' },
      h('button', { id: 'add-visit', type: 'button', onclick: () => edit('visits', null) }, t('addVisit')),
      h('button', { id: 'add-leave', type: 'button', onclick: () => edit('leave', null) }, t('addLeave'))),
    h('h2', {}, t('visits')),
    h('ul', { id: 'visits', class: 'records' }, visits
      .sort((a, b) => String(b.data.check_in).localeCompare(String(a.data.check_in)))
      .map((v) => visitItem(v, placeName))),
    h('h2', {}, t('leave')),
    h('ul', { id: 'leave', class: 'records' }, leave.map((l) => leaveItem(l))),
    h('p', { class: 'foot' }, `${session.user.username} · ${doctor} · `,
      h('button', { id: 'sign-out', type: 'button', class: 'link', onclick: signOut }, t('signOut'))),
  ];
}

function storageNotice() {
  if (!app.storage) return null;
  const durable = app.storage.mode === 'opfs';
  return h('p', { id: 'storage', class: `storage ${durable ? '' : 'warn'}`, 'data-mode': app.storage.mode, 'data-persisted': String(app.persisted) },
    `${t('storage')}: ${durable ? t('storageOpfs') : t('storageIdb')} · ${app.persisted ? t('persisted') : t('notPersisted')}`);
}

function weekCard(plan, visits, today, doctor) {
  const live = visits.filter((v) => !v.deleted).map((v) => ({ ...v.data, id: v.id }));
  const rows = plan ? weekStanding(plan.plans, live, today, doctor) : [];
  return h('section', { id: 'week', class: 'card' }, h('h2', {}, t('thisWeek')),
    rows.length ? rows.map((s) => h('div', { class: `standing ${s.status}`, 'data-assignment': s.assignment, 'data-measured': s.measured, 'data-required': s.required, 'data-status': s.status },
      h('span', { class: 'figure' }, `${s.measured} / ${s.required}`),
      h('span', {}, ` ${t(s.unit === 'sessions' ? 'sessions' : 'dutyDays')} · ${t(`kind_${s.kind}`)} ${s.assignment} · ${s.week}`),
      h('strong', { class: 'verdict' }, t(s.status))))
      : h('p', {}, t('noPlan')));
}

function checkInCard(current, placeName) {
  const assignmentSelect = h('select', { id: 'ci-assignment', name: 'assignment', onchange: () => fillPlaces() },
    current.map((a) => h('option', { value: a.id }, `${t(`kind_${a.data.kind}`)} ${a.id}`)),
    h('option', { value: '' }, t('none')));
  const placeSelect = h('select', { id: 'ci-place', name: 'place' });
  const fillPlaces = () => {
    const chosen = current.find((a) => a.id === assignmentSelect.value);
    const codes = chosen ? chosen.data.places : [...placeName.keys()];
    mount(placeSelect, codes.map((code) => h('option', { value: code }, placeName.get(code) || code)));
  };
  fillPlaces();
  return h('section', { id: 'check-in-card', class: 'card' },
    h('label', {}, t('assignment'), assignmentSelect),
    h('label', {}, t('place'), placeSelect),
    h('button', { id: 'check-in', type: 'button', class: 'primary big', onclick: () => checkIn(current, assignmentSelect.value, placeSelect.value) }, t('checkIn')));
}

async function checkIn(current, assignmentId, place) {
  if (!place) {
    app.notice = `${t('place')}: ${t('err_required')}`;
    render();
    return;
  }
  const session = await app.store.session();
  const chosen = current.find((a) => a.id === assignmentId);
  const draft = {
    id: newId(), doctor: session.user.doctor, assignment: chosen ? chosen.id : null, place,
    kind: chosen ? chosen.data.kind : 'sitin', check_in: localIso(), position: 'pending',
  };
  await app.store.setOpenVisit(draft); // saved before the position is asked: never blocked by it
  render();
  const position = await currentPosition();
  const open = await app.store.openVisit();
  if (!open || open.id !== draft.id) return;
  await app.store.setOpenVisit({ ...open, ...position, position: position.missing ? position.missing : 'ok' });
  render();
}

function positionText(v) {
  if (typeof v.lat === 'number') return `${t('position')} ${v.lat.toFixed(5)}, ${v.lon.toFixed(5)} (${t('accuracy')} ${Math.round(v.accuracy_m)} m)`;
  if (v.position === 'pending') return `${t('position')} …`;
  const reason = { denied: 'positionDenied', unavailable: 'positionUnavailable', timeout: 'positionTimeout' }[v.position];
  return t(reason || 'noPosition');
}

function openVisitCard(open, placeName) {
  return h('section', { id: 'open-visit', class: 'card live' },
    h('h2', {}, t('inProgress')),
    h('p', {}, `${placeName.get(open.place) || open.place} · ${t('since')} ${shortTime(open.check_in)}`),
    h('p', { id: 'open-position', class: typeof open.lat === 'number' ? '' : 'warn' }, positionText(open)),
    h('label', {}, t('patients'), h('input', { id: 'co-patients', type: 'number', inputmode: 'numeric', min: 0, value: open.patients ?? 0, oninput: keepTyped })),
    h('label', {}, t('notes'), h('textarea', { id: 'co-notes', rows: 2, oninput: keepTyped }, open.notes || '')),
    h('p', { id: 'co-error', class: 'error' }),
    h('button', { id: 'check-out', type: 'button', class: 'primary big', onclick: checkOut }, t('checkOut')));
}

/** What the doctor types during a visit is kept in the draft at once: a redraw, a reload
 * or a flat battery loses none of it. */
async function keepTyped() {
  const open = await app.store.openVisit();
  if (!open) return;
  const patients = document.getElementById('co-patients');
  const notes = document.getElementById('co-notes');
  await app.store.setOpenVisit({ ...open, patients: patients ? patients.value : open.patients, notes: notes ? notes.value : open.notes });
}

async function checkOut() {
  const open = await app.store.openVisit();
  const form = app.forms.forms.visits;
  const data = {
    doctor: open.doctor, assignment: open.assignment, place: open.place, kind: open.kind,
    check_in: open.check_in, check_out: localIso(), patients: Number(document.getElementById('co-patients').value || 0),
    device_id: await app.store.deviceId(), form_version: form.version, recorded_at: localIso(),
  };
  const notes = document.getElementById('co-notes').value.trim();
  if (notes) data.notes = notes;
  if (typeof open.lat === 'number') Object.assign(data, { lat: open.lat, lon: open.lon, accuracy_m: open.accuracy_m });
  const errors = validate(form, data);
  if (Object.keys(errors).length) {
    document.getElementById('co-error').textContent = Object.entries(errors).map(([k, e]) => `${label(field(form, k).label)}: ${errorText(e)}`).join('; ');
    return;
  }
  await app.store.save('visits', open.id, data);
  if (open.position !== 'ok') await app.store.setMeta(`position:${open.id}`, open.position || 'unavailable');
  await app.store.setOpenVisit(null);
  app.notice = t(typeof open.lat === 'number' ? 'saved' : 'withoutPosition');
  afterEdit();
}

function stateBadge(state) {
  return h('span', { class: `badge ${state}`, 'data-state': state }, t(`state_${state}`));
}

/** A change in flight is "sending" while a sync runs; otherwise, for the doctor, it is
 * pending like any other (the next sync sends it again, unchanged). */
function shownState(state) {
  return state === 'in_flight' && !(app.syncer && app.syncer.running) ? 'pending' : state;
}

function visitItem(v, placeName) {
  const d = v.data;
  const noPosition = typeof d.lat !== 'number';
  const state = shownState(v.state);
  return h('li', { class: `record ${state}`, 'data-id': v.id, 'data-state': state, 'data-outbox': v.state },
    h('div', { class: 'line' },
      h('strong', {}, `${shortTime(d.check_in)}–${String(d.check_out || '').slice(11, 16)}`),
      ` ${placeName.get(d.place) || d.place || ''} · ${t(`kind_${d.kind}`)} · ${t('patients')} ${d.patients ?? ''}`,
      v.deleted ? ` · ${t('deleted')}` : null, ' ', stateBadge(state)),
    noPosition && !v.deleted ? h('div', { class: 'warn no-position' }, t('noPosition')) : null,
    d.notes ? h('div', { class: 'notes' }, d.notes) : null,
    v.rejection ? h('div', { class: 'error rejection' }, `${t('reason')}: ${v.rejection.code} ${Object.entries(v.rejection.errors).map(([k, m]) => `${k}: ${m.join(', ')}`).join('; ')}`) : null,
    v.sendBack ? h('div', { class: 'send-back' }, `${t('comment')}: `, h('q', {}, v.sendBack.comment), ` — ${v.sendBack.by}`) : null,
    v.conflict ? conflictBox(v.conflict) : null,
    v.deleted ? null : h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'small edit', onclick: () => edit('visits', v) }, t('edit')),
      h('button', { type: 'button', class: 'small danger delete', onclick: () => remove('visits', v.id) }, t('delete'))));
}

function brief(data) {
  if (!data) return t('deleted');
  return `${shortTime(data.check_in || data.start)}${data.check_out ? `–${data.check_out.slice(11, 16)}` : ''} · ${t('patients')} ${data.patients ?? ''}${data.notes ? ` · ${data.notes}` : ''}`;
}

function conflictBox(c) {
  return h('div', { class: 'conflict', 'data-conflict': c.id },
    h('div', { class: 'mine' }, h('strong', {}, `${t('mine')}: `), c.mine.op === 'delete' ? t('deleted') : brief(c.mine.data)),
    h('div', { class: 'theirs' }, h('strong', {}, `${t('theirs')}: `), c.theirs ? (c.theirs.deleted ? t('deleted') : brief(c.theirs.data)) : '…'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'small keep-mine', onclick: () => settle(c.id, 'mine') }, t('keepMine')),
      h('button', { type: 'button', class: 'small keep-theirs', onclick: () => settle(c.id, 'theirs') }, t('keepTheirs'))));
}

function leaveItem(l) {
  const d = l.data;
  const state = shownState(l.state);
  return h('li', { class: `record ${state}`, 'data-id': l.id, 'data-state': state, 'data-outbox': l.state },
    h('div', { class: 'line' }, h('strong', {}, `${d.start} – ${d.end}`), ` ${d.reason || ''} · ${d.status || ''} `, stateBadge(state)),
    l.rejection ? h('div', { class: 'error rejection' }, `${t('reason')}: ${l.rejection.code}`) : null,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'small edit', onclick: () => edit('leave', l) }, t('edit')),
      h('button', { type: 'button', class: 'small danger delete', onclick: () => remove('leave', l.id) }, t('delete'))));
}

async function settle(conflictId, keep) {
  await app.store.resolve(conflictId, keep);
  afterEdit();
}

async function remove(collection, id) {
  if (!window.confirm(t('deleteConfirm'))) return;
  await app.store.remove(collection, id);
  afterEdit();
}

// --- the record forms (a past visit, an edit, leave) ----------------------------------------

function edit(collection, record) {
  app.view = 'edit';
  app.editing = { collection, record };
  app.errors = {};
  render();
}

const VISIT_INPUTS = ['place', 'assignment', 'check_in', 'check_out', 'patients', 'notes'];
const LEAVE_INPUTS = ['start', 'end', 'reason'];

async function editView() {
  const { collection, record } = app.editing;
  const form = app.forms.forms[collection];
  const data = app.editing.draft || (record ? record.data : {});
  const places = await app.store.records('places');
  const assignments = await app.store.records('assignments');
  const names = collection === 'visits' ? VISIT_INPUTS : LEAVE_INPUTS;
  const input = (name) => {
    const def = field(form, name);
    const value = data[name];
    let control;
    if (name === 'place') {
      control = h('select', { name }, places.filter((p) => p.data.level === 'village' || p.id === value)
        .map((p) => h('option', { value: p.id, selected: p.id === value }, p.data.name || p.id)));
    } else if (name === 'assignment') {
      control = h('select', { name }, h('option', { value: '' }, t('none')),
        assignments.map((a) => h('option', { value: a.id, selected: a.id === value }, `${t(`kind_${a.data.kind}`)} ${a.id}`)));
    } else if (def.type === 'datetime') {
      control = h('input', { name, type: 'datetime-local', step: 1, value: toInput(value) });
    } else if (def.type === 'date') {
      control = h('input', { name, type: 'date', value: value || '' });
    } else if (def.type === 'integer' || def.type === 'number') {
      control = h('input', { name, type: 'number', inputmode: 'numeric', min: def.minimum, max: def.maximum, value: value ?? '' });
    } else {
      control = h('textarea', { name, rows: 2, maxlength: def.max_length }, value || '');
    }
    const error = app.errors[name];
    return h('label', { 'data-field': name }, label(def.label), control,
      error ? h('span', { class: 'error field-error', role: 'alert' }, errorText(error)) : null);
  };
  return h('form', { id: 'record-form', class: 'card', onsubmit: submitRecord, novalidate: true },
    h('h1', {}, label(form.title)),
    names.map(input),
    app.errors._other ? h('p', { class: 'error' }, app.errors._other) : null,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, t('save')),
      h('button', { type: 'button', onclick: () => { app.view = 'home'; afterEdit(); } }, t('cancel'))));
}

async function submitRecord(event) {
  event.preventDefault();
  const { collection, record } = app.editing;
  const form = app.forms.forms[collection];
  const session = await app.store.session();
  const values = new FormData(event.target);
  const data = { ...(record ? record.data : {}), doctor: session.user.doctor };
  for (const [name, raw] of values.entries()) {
    const def = field(form, name);
    const text = String(raw).trim();
    if (!def) continue;
    if (text === '') delete data[name];
    else if (def.type === 'integer') data[name] = /^-?\d+$/.test(text) ? Number(text) : text;
    else if (def.type === 'number') data[name] = Number.isFinite(Number(text)) ? Number(text) : text;
    else if (def.type === 'datetime') {
      // An unchanged time keeps its own offset and seconds exactly as recorded.
      const before = record ? record.data[name] : null;
      data[name] = before && toInput(before) === text ? before : fromInput(text);
    }
    else data[name] = text;
  }
  if (collection === 'visits') {
    if (data.assignment === undefined) data.assignment = null;
    const assignment = (await app.store.records('assignments')).find((a) => a.id === data.assignment);
    data.kind = assignment ? assignment.data.kind : data.kind || 'sitin';
    if (data.patients === undefined) data.patients = 0;
  }
  if (collection === 'leave' && !data.status) data.status = 'pending';
  Object.assign(data, { device_id: await app.store.deviceId(), form_version: form.version, recorded_at: localIso() });
  app.errors = validate(form, data);
  if (Object.keys(app.errors).length) {
    app.editing.draft = data; // the form comes back as the doctor filled it, errors beside
    render();
    return;
  }
  await app.store.save(collection, record ? record.id : newId(), data);
  app.view = 'home';
  app.notice = t('saved');
  afterEdit();
}

// --- plumbing ------------------------------------------------------------------------------

function afterEdit() {
  render();
  if (app.syncer && navigator.onLine) app.syncer.soon();
  if (app.updates) app.updates.offer(); // a safe moment now, perhaps, for a waiting version
}

async function signOut() {
  try {
    await app.api.logout();
  } catch {
    // offline: the tokens are forgotten here all the same
  }
  await app.store.setSession(null);
  app.view = 'login';
  render();
}

/** What the doctor typed or picked and a redraw (a sync finishing, a position arriving)
 * would otherwise reset: inputs by id, or by name within a form. */
function typedValues() {
  const typed = new Map();
  for (const el of root().querySelectorAll('input, textarea, select')) {
    const key = el.id ? `#${el.id}` : el.name ? `[name="${el.name}"]` : null;
    if (!key) continue;
    if (el.tagName === 'SELECT' && !el.options.length) continue;
    const initial = el.tagName === 'SELECT'
      ? (Array.from(el.options).find((o) => o.defaultSelected) || el.options[0]).value
      : el.defaultValue;
    if (el.value !== initial) typed.set(key, el.value);
  }
  return typed;
}

function restoreTyped(typed) {
  for (const [key, value] of typed) {
    const el = root().querySelector(key);
    // A select keeps a pick only if it still offers it (the lists change with a sync).
    if (el && (el.tagName !== 'SELECT' || Array.from(el.options).some((o) => o.value === value))) el.value = value;
  }
}

let drawing = Promise.resolve();

/** Redraw the header and the current screen from the store (one redraw at a time). */
export function render() {
  drawing = drawing.then(async () => {
    const session = await app.store.session();
    await drawHeader();
    let screen;
    if (!session || !app.forms) screen = loginView();
    else if (app.view === 'edit') screen = await editView();
    else screen = await homeView();
    const typed = typedValues(); // after the awaits: what was typed while they ran counts
    mount(root(), screen);
    restoreTyped(typed);
    // For the page tests: the state this drawing shows, set once all of it is drawn.
    const status = await app.store.status();
    Object.assign(document.body.dataset, { view: !session ? 'login' : app.view,
      phase: app.syncer ? app.syncer.state.phase : 'idle', pending: String(status.pending),
      syncedAt: status.last_sync_at || '' });
  }).catch((error) => {
    mount(root(), h('p', { class: 'error' }, String(error.message || error)));
  });
  return drawing;
}

function startSync() {
  if (app.syncer) return;
  app.syncer = new Syncer({ store: app.store, api: app.api, onChange: () => render() });
  window.addEventListener('online', () => app.syncer.now());
  window.addEventListener('offline', () => render());
  setInterval(() => navigator.onLine && app.syncer.now(), 5 * 60 * 1000);
}

/** A safe moment for a new version: no visit open and no form being filled. */
async function safeMoment() {
  return app.view !== 'edit' && !(await app.store.openVisit());
}

app.render = () => render();

async function boot() {
  setLanguage(localStorage.getItem('zhuxun.lang') || 'zh');
  document.documentElement.lang = language() === 'zh' ? 'zh-CN' : 'en';
  app.db = openDatabase();
  app.store = app.db.store;
  try {
    app.storage = await app.db.call('open', { forceFallback: new URLSearchParams(location.search).has('idb') });
  } catch (error) {
    // The OPFS pool is one tab's at a time: another tab of the app still holds it.
    mount(root(), h('p', { id: 'db-busy', class: 'error', role: 'alert' }, t('busy'), h('br'), String(error.message || error)));
    return;
  }
  if (navigator.storage && navigator.storage.persist) {
    app.persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
  } else {
    app.persisted = false;
  }
  app.api = new Api({ session: { get: () => app.store.session(), set: (s) => app.store.setSession(s) }, deviceId: await app.store.deviceId() });
  app.forms = await app.store.forms();
  const session = await app.store.session();
  if (session) {
    if (navigator.onLine) await loadForms();
    startSync();
    if (navigator.onLine) app.syncer.now();
  }
  watchForUpdates({ safeMoment, onWaiting: () => { app.updateWaiting = true; render(); } })
    .then((updates) => { app.updates = updates; });
  await render();
  document.body.dataset.ready = 'true';
}

boot();
