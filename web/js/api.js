// The one fetch wrapper: every request of the web map goes through here, to the platform only.
// Errors are typed: ApiError (the API answered 4xx/5xx with {error, message, details?} or FastAPI's
// {detail: [...]}), NetworkError (no answer), AbortError passes through untouched.
// Access problems — 401 (not or no longer logged in), 403 (the role may not), 429 (rate limited) — get a
// plain-words message in the current language and are also reported to the listeners of onAccessProblem
// (main.js: the login screen comes back on a 401, a notice explains a 403 or 429). The session itself is an
// HttpOnly cookie the page never sees.
import { t } from './i18n.js';

const AUTH_PREFIX = '/api/v1/auth/';
const accessListeners = new Set();
let sessionEpoch = 0; // +1 at each login: a 401 to a request sent before the latest login is stale

/** Called on a successful login: answers to requests sent before it no longer speak for the session. */
export function markNewSession() {
  sessionEpoch += 1;
}

/** fn(err: ApiError) on every 401 / 403 / 429 answer (401s of /api/v1/auth/* are left to their caller). */
export function onAccessProblem(fn) {
  accessListeners.add(fn);
  return () => accessListeners.delete(fn);
}

export class ApiError extends Error {
  constructor(status, body, url, { retryAfter = null } = {}) {
    const serverMessage = ApiError.messageOf(body) || `HTTP ${status}`;
    super(ApiError.accessMessage(status, body, url, retryAfter) || serverMessage);
    this.name = 'ApiError';
    this.status = status;
    this.url = url;
    this.serverMessage = serverMessage;
    this.retryAfter = retryAfter;
    this.code = (body && body.error) || (body && body.detail ? 'validation_error' : `http_${status}`);
    this.details = (body && body.details) || null;
    // FastAPI request validation: [{loc: ["body", "land_use"], msg, type}]
    this.fieldErrors = Array.isArray(body && body.detail)
      ? body.detail.map((d) => ({ field: (d.loc || []).filter((p) => p !== 'body' && p !== 'query').join('.'), message: d.msg }))
      : [];
  }

  /** The plain-words message of an access problem; '' for other errors and for the login calls themselves. */
  static accessMessage(status, body, url, retryAfter) {
    if (String(url).startsWith(AUTH_PREFIX)) return '';
    if (status === 401) return t('auth.expired');
    if (status === 403) {
      const permission = body && body.details && body.details.permission;
      return permission ? t('auth.forbiddenNeeds', { permission }) : t('auth.forbidden');
    }
    if (status === 429) return retryAfter ? t('auth.rateLimited', { seconds: retryAfter }) : t('auth.rateLimitedSoon');
    return '';
  }

  get isAccessProblem() {
    return this.status === 401 || this.status === 403 || this.status === 429;
  }

  static messageOf(body) {
    if (!body) return '';
    if (typeof body.message === 'string') return body.message;
    if (typeof body.detail === 'string') return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).filter((p) => p !== 'body').join('.')}: ${d.msg}`).join('; ');
    }
    return '';
  }
}

export class NetworkError extends Error {
  constructor(url, cause) {
    super(`network error: ${url}`);
    this.name = 'NetworkError';
    this.url = url;
    this.cause = cause;
  }
}

export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.code === 20);
}

/** path?k=v&… with the empty parameters left out (also for plain links, e.g. a CSV download). */
export function withQuery(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function request(path, options = {}) {
  const { method = 'GET', params, json, form, signal, as = 'json' } = options;
  const url = withQuery(path, params);
  if (!url.startsWith('/')) throw new Error(`only platform-relative URLs are allowed: ${url}`);
  const epoch = sessionEpoch;
  const init = { method, signal, headers: {}, credentials: 'same-origin' };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  if (as === 'json') init.headers.Accept = 'application/json';
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new NetworkError(url, err);
  }
  if (!response.ok) {
    if (response.status === 401 && epoch !== sessionEpoch && !url.startsWith(AUTH_PREFIX)) {
      // sent with a session that a login has replaced meanwhile (the API did nothing with it): send it again
      return request(path, options);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const retry = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    const err = new ApiError(response.status, body, url, { retryAfter: Number.isFinite(retry) ? retry : null });
    if (err.isAccessProblem && !(err.status === 401 && url.startsWith(AUTH_PREFIX))) {
      for (const fn of accessListeners) {
        try {
          fn(err);
        } catch (listenerError) {
          console.warn(listenerError);
        }
      }
    }
    throw err;
  }
  if (response.status === 204) return as === 'arrayBuffer' ? new ArrayBuffer(0) : null;
  if (as === 'arrayBuffer') return response.arrayBuffer();
  return response.json();
}

export const api = {
  get: (path, params, opts = {}) => request(path, { ...opts, params }),
  post: (path, json, opts = {}) => request(path, { ...opts, method: 'POST', json }),
  postForm: (path, form, opts = {}) => request(path, { ...opts, method: 'POST', form }),
  patch: (path, json, opts = {}) => request(path, { ...opts, method: 'PATCH', json }),
  del: (path, opts = {}) => request(path, { ...opts, method: 'DELETE' }),
  buffer: (path, opts = {}) => request(path, { ...opts, as: 'arrayBuffer' }),
};

// The platform's URLs, in one place.
export const urls = {
  login: '/api/v1/auth/login',
  logout: '/api/v1/auth/logout',
  me: '/api/v1/auth/me',
  mapConfig: '/api/v1/map-config',
  layers: '/api/v1/layers',
  identify: '/api/v1/identify',
  search: '/api/v1/search',
  dashboard: '/api/v1/dashboard',
  checks: '/api/v1/checks',
  checkUpload: '/api/v1/checks/upload',
  checkInspect: '/api/v1/checks/inspect',
  check: (id) => `/api/v1/checks/${encodeURIComponent(id)}`,
  checkReplay: (id) => `/api/v1/checks/${encodeURIComponent(id)}/replay`,
  checkRecheck: (id) => `/api/v1/checks/${encodeURIComponent(id)}/recheck`,
  reportHtml: (id) => `/api/v1/checks/${encodeURIComponent(id)}/report.html`,
  reportPdf: (id) => `/api/v1/checks/${encodeURIComponent(id)}/report.pdf`,
  jobs: '/api/v1/jobs',
  conflicts: '/api/v1/conflicts',
  conflict: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}`,
  conflictFeatures: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}/features.geojson`,
  conflictGpkg: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}/features.gpkg`,
  tile: (code, z, x, y) => `/tiles/${encodeURIComponent(code)}/${z}/${x}/${y}.pbf`,
  features: (code) => `/api/v1/layers/${encodeURIComponent(code)}/features.geojson`,
  layerChanges: (code) => `/api/v1/layers/${encodeURIComponent(code)}/changes`,
  layerChangesGeojson: (code) => `/api/v1/layers/${encodeURIComponent(code)}/changes.geojson`,
  users: '/api/v1/users',
  user: (name) => `/api/v1/users/${encodeURIComponent(name)}`,
  apiKeys: '/api/v1/api-keys',
  apiKey: (prefix) => `/api/v1/api-keys/${encodeURIComponent(prefix)}`,
  audit: '/api/v1/audit',
  auditCsv: '/api/v1/audit/export.csv',
};
