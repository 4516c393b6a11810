// The gateway's HTTP API as the page uses it: JSON calls and byte ranges, with the bearer token of
// the session (kept in sessionStorage: it lasts as long as the tab and never reaches a cookie or a URL).

const TOKEN_KEY = 'hexz.token';

/** An error answered by the gateway (its JSON `error.code` and `message`) or met on the way. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();

/** Called with no argument whenever the gateway answers 401 (the page then asks for a token). */
export function onUnauthorized(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function authHeaders(extra = {}) {
  const t = getToken();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

async function failure(res) {
  let code = `HTTP_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401) for (const fn of listeners) fn();
  return new ApiError(res.status, code, message);
}

/** GET a JSON document of the API (`/v1/…`). */
export async function getJson(url, { signal } = {}) {
  const res = await fetch(url, { headers: authHeaders({ accept: 'application/json' }), signal });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/**
 * Bytes [start, end) of a file URL by one Range request. Returns the bytes and the file's total size
 * (from Content-Range). Never asks for more than it was told: previews read by range, not whole files.
 */
export async function getRange(url, start, end, { signal } = {}) {
  if (end <= start) return { bytes: new Uint8Array(0), size: undefined };
  const res = await fetch(url, { headers: authHeaders({ range: `bytes=${start}-${end - 1}` }), signal });
  if (res.status === 416) return { bytes: new Uint8Array(0), size: undefined };
  if (!res.ok) throw await failure(res);
  const m = /\/(\d+)$/.exec(res.headers.get('content-range') || '');
  const bytes = new Uint8Array(await res.arrayBuffer());
  // A 200 means the server sent the whole body (a zero-length file): take only what was asked.
  return { bytes: res.status === 200 ? bytes.subarray(start, end) : bytes, size: m ? Number(m[1]) : bytes.byteLength };
}

/** The whole body of a (small) file as a Blob of its own type, for media elements when a token is needed. */
export async function getBlob(url, { signal } = {}) {
  const res = await fetch(url, { headers: authHeaders(), signal });
  if (!res.ok) throw await failure(res);
  return res.blob();
}

/** URL path of an archive in the API: each segment percent-encoded, slashes kept. */
export function apiPath(name, view, path = '') {
  const enc = (p) => p.split('/').map(encodeURIComponent).join('/');
  let out = `/v1/archives/${enc(name)}`;
  if (view) out += `/${view}`;
  if (path) out += `/${enc(path)}`;
  return out;
}

const SERVICE_WORKER = '/ui/sw.js';

/**
 * The page's only Trusted Types policy (the CSP allows no other): it turns exactly the service
 * worker's URL into a TrustedScriptURL and refuses anything else. No policy creates HTML.
 */
const scriptUrls = window.trustedTypes
  ? window.trustedTypes.createPolicy('hexz-sw', {
      createScriptURL: (u) => {
        if (u !== SERVICE_WORKER) throw new TypeError(`not a script of this page: ${u}`);
        return u;
      },
    })
  : { createScriptURL: (u) => u };

let answering = false;

/**
 * The service worker that lends the token to <img>, <audio> and <video>, when the browser allows one.
 * Started only once a token is in use: without one, media requests go straight to the network.
 */
export async function startServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return false;
  // The worker asks the page for the token (it may have been stopped and lost it since).
  if (!answering) {
    answering = true;
    navigator.serviceWorker.addEventListener('message', (e) => {
      if (e.data && e.data.type === 'token?' && e.ports[0]) e.ports[0].postMessage({ type: 'token', token: getToken() });
    });
  }
  try {
    await navigator.serviceWorker.register(scriptUrls.createScriptURL(SERVICE_WORKER), { scope: '/' });
    await navigator.serviceWorker.ready;
    return true;
  } catch {
    return false;
  }
}

/** True when media elements of this page get the token (no token needed, or the worker controls the page). */
export function mediaCanAuthenticate() {
  return !getToken() || Boolean(navigator.serviceWorker && navigator.serviceWorker.controller);
}

/** Hand the token to the service worker right before a download link is followed (navigations cannot ask for it). */
export function handTokenToWorker() {
  const c = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (c) c.postMessage({ type: 'token', token: getToken() });
}

/** Size, type and validators of a file URL, from a HEAD request (no body is read). */
export async function head(url, { signal } = {}) {
  const res = await fetch(url, { method: 'HEAD', headers: authHeaders(), signal });
  if (!res.ok) {
    // HEAD answers carry no body: ask again with GET of one byte for the JSON error.
    const again = await fetch(url, { headers: authHeaders({ range: 'bytes=0-0' }), signal });
    throw await failure(again.ok ? res : again);
  }
  const h = (k) => res.headers.get(k) || undefined;
  return { size: Number(h('content-length') ?? 0), type: h('content-type') || 'application/octet-stream', etag: h('etag'), lastModified: h('last-modified') };
}
