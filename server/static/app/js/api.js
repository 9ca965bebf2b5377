// The server's HTTP API (docs/sync-protocol.md): bearer tokens with one refresh and retry
// on `token_expired`, `X-Device-Id`, push bodies gzipped where the browser can
// (CompressionStream), answers gzipped by the server (the browser asks for it). Every
// failure is an ApiError: `kind` offline (no answer at all) or http (status, code, message).
import { expandPage } from './compact.js';

export class ApiError extends Error {
  constructor(kind, { status = 0, code = null, message = '', messageZh = null, errors = null, retryAfterS = null } = {}) {
    super(message || kind);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.messageZh = messageZh;
    this.errors = errors;
    this.retryAfterS = retryAfterS;
  }
}

const GZIP_MIN_BYTES = 1024;

async function gzipped(text) {
  if (typeof CompressionStream === 'undefined' || text.length < GZIP_MIN_BYTES) return null;
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export class Api {
  /** `session` is {get(): {access_token, refresh_token}|null, set(tokens)} (kept in the store). */
  constructor({ base = '', session, deviceId, fetchImpl = globalThis.fetch.bind(globalThis) }) {
    this.base = base;
    this.session = session;
    this.deviceId = deviceId;
    this.fetch = fetchImpl;
  }

  async raw(method, path, { body = null, token = null, gzip = false, headers = {} } = {}) {
    const init = { method, headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (this.deviceId) init.headers['X-Device-Id'] = this.deviceId;
    if (body !== null) {
      const text = JSON.stringify(body);
      const packed = gzip ? await gzipped(text) : null;
      init.headers['Content-Type'] = 'application/json';
      if (packed) init.headers['Content-Encoding'] = 'gzip';
      init.body = packed || text;
    }
    let response;
    try {
      response = await this.fetch(this.base + path, init);
    } catch (error) {
      throw new ApiError('offline', { message: String(error && error.message ? error.message : error) });
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (response.ok) return answer;
    const e = (answer && answer.error) || {};
    const retry = Number(response.headers.get('Retry-After'));
    throw new ApiError('http', { status: response.status, code: e.code || null, message: e.message || `HTTP ${response.status}`,
      messageZh: e.message_zh || null, errors: e.errors || null, retryAfterS: Number.isFinite(retry) && retry > 0 ? retry : null });
  }

  /** A call with the access token; on `token_expired` refresh once and retry. */
  async call(method, path, options = {}) {
    const tokens = await this.session.get();
    if (!tokens) throw new ApiError('http', { status: 401, code: 'unauthorized', message: 'sign in first' });
    try {
      return await this.raw(method, path, { ...options, token: tokens.access_token });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || error.code !== 'token_expired') throw error;
    }
    const fresh = await this.raw('POST', '/api/v1/auth/refresh', { token: tokens.refresh_token });
    await this.session.set({ ...tokens, access_token: fresh.access_token });
    return this.raw(method, path, { ...options, token: fresh.access_token });
  }

  login(username, password) {
    return this.raw('POST', '/api/v1/auth/login', { body: { username, password } });
  }

  logout() {
    return this.call('POST', '/api/v1/auth/logout');
  }

  forms() {
    return this.raw('GET', '/api/v1/forms');
  }

  plan() {
    return this.call('GET', '/api/v1/duty/plan');
  }

  push(body) {
    return this.call('POST', '/api/v1/sync/push', { body, gzip: true });
  }

  /** A pull page in the full form: asked for compact (issue 14, the wire) and expanded here,
   * so the store holds exactly what the full form brings (compact.js). */
  async pull(cursor, limit) {
    const query = new URLSearchParams({ limit: String(limit), compact: '1' });
    if (cursor) query.set('cursor', cursor);
    return expandPage(await this.call('GET', `/api/v1/sync/pull?${query}`));
  }
}
