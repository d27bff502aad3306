// HTTP to the monitoring service (same origin) and the control service (CORS), with the key
// in the X-API-Key header only: never in a URL.

const STORAGE = 'megapack.operatorKey';

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(`${status}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(STORAGE); },
  set key(value) {
    if (value) sessionStorage.setItem(STORAGE, value); else sessionStorage.removeItem(STORAGE);
  },
};

export function readable(detail) {
  if (Array.isArray(detail)) {
    return detail.map((item) => `${(item.loc || []).join('.')}: ${item.msg}`).join('; ');
  }
  return typeof detail === 'string' ? detail : JSON.stringify(detail);
}

export class Client {
  constructor(base = '') {
    this.base = base;
    this.onUnauthorized = () => {};
  }

  /** The raw response (for streams and CSV), key attached. */
  async raw(path, { method = 'GET', body, headers = {}, signal, key } = {}) {
    const init = {
      method, signal, cache: 'no-store',
      headers: { 'X-API-Key': key || session.key || '', ...headers },
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    return fetch(this.base + path, init);
  }

  /** JSON in, JSON out; an ApiError with the API's own message when refused. */
  async json(path, options = {}) {
    const response = await this.raw(path, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) {
      if (response.status === 401 && !options.key) this.onUnauthorized();
      throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data,
        path);
    }
    return data;
  }

  get(path, options) { return this.json(path, options); }
  post(path, body, options = {}) { return this.json(path, { ...options, method: 'POST', body }); }
}
