// The one fetch wrapper: every request of the web map goes through here, to the platform only.
// Errors are typed: ApiError (the API answered 4xx/5xx with {error, message, details?} or FastAPI's
// {detail: [...]}), NetworkError (no answer), AbortError passes through untouched.

export class ApiError extends Error {
  constructor(status, body, url) {
    const message = ApiError.messageOf(body) || `HTTP ${status}`;
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.url = url;
    this.code = (body && body.error) || (body && body.detail ? 'validation_error' : `http_${status}`);
    this.details = (body && body.details) || null;
    // FastAPI request validation: [{loc: ["body", "land_use"], msg, type}]
    this.fieldErrors = Array.isArray(body && body.detail)
      ? body.detail.map((d) => ({ field: (d.loc || []).filter((p) => p !== 'body' && p !== 'query').join('.'), message: d.msg }))
      : [];
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

function withQuery(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function request(path, { method = 'GET', params, json, form, signal, as = 'json' } = {}) {
  const url = withQuery(path, params);
  if (!url.startsWith('/')) throw new Error(`only platform-relative URLs are allowed: ${url}`);
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
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body, url);
  }
  if (response.status === 204) return as === 'arrayBuffer' ? new ArrayBuffer(0) : null;
  if (as === 'arrayBuffer') return response.arrayBuffer();
  return response.json();
}

export const api = {
  get: (path, params, opts = {}) => request(path, { ...opts, params }),
  post: (path, json, opts = {}) => request(path, { ...opts, method: 'POST', json }),
  postForm: (path, form, opts = {}) => request(path, { ...opts, method: 'POST', form }),
  buffer: (path, opts = {}) => request(path, { ...opts, as: 'arrayBuffer' }),
};

// The platform's URLs, in one place.
export const urls = {
  mapConfig: '/api/v1/map-config',
  layers: '/api/v1/layers',
  identify: '/api/v1/identify',
  search: '/api/v1/search',
  dashboard: '/api/v1/dashboard',
  checks: '/api/v1/checks',
  checkUpload: '/api/v1/checks/upload',
  check: (id) => `/api/v1/checks/${encodeURIComponent(id)}`,
  reportHtml: (id) => `/api/v1/checks/${encodeURIComponent(id)}/report.html`,
  reportPdf: (id) => `/api/v1/checks/${encodeURIComponent(id)}/report.pdf`,
  conflicts: '/api/v1/conflicts',
  conflict: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}`,
  conflictFeatures: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}/features.geojson`,
  conflictGpkg: (id) => `/api/v1/conflicts/${encodeURIComponent(id)}/features.gpkg`,
  tile: (code, z, x, y) => `/tiles/${encodeURIComponent(code)}/${z}/${x}/${y}.pbf`,
  features: (code) => `/api/v1/layers/${encodeURIComponent(code)}/features.geojson`,
};
