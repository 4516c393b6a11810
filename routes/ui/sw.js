// Service worker of the page: media elements (<img>, <audio>, <video>) and download links cannot send
// an Authorization header, so on a gateway with bearer tokens this worker adds the page's token to
// exactly those requests, and only for archive content of this same origin. Range requests pass
// through unchanged, so <video> seeks by range as it would without a token. Everything else (the
// page's own fetches, which carry the header themselves) is left alone.

const CONTENT = /^\/v1\/archives\/.+\/(files\/.+|disk)$/;
const MEDIA = new Set(['image', 'audio', 'video']);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

// Navigations (downloads) have no client to ask: the page hands the token over just before one.
let handedOver = '';
self.addEventListener('message', (e) => {
  if (e.data && e.data.type === 'token') handedOver = e.data.token || '';
});

/** The token of the page that made the request (asked each time: a worker may be stopped at any moment). */
async function tokenOf(clientId) {
  const client = clientId ? await self.clients.get(clientId) : undefined;
  if (!client) return handedOver;
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(''), 2000);
    channel.port1.onmessage = (m) => {
      clearTimeout(timer);
      resolve((m.data && m.data.token) || '');
    };
    client.postMessage({ type: 'token?' }, [channel.port2]);
  });
}

self.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !CONTENT.test(url.pathname) || req.headers.has('authorization')) return;
  const download = req.mode === 'navigate' && url.searchParams.has('download');
  if (!MEDIA.has(req.destination) && !download) return;
  e.respondWith(
    (async () => {
      const token = await tokenOf(e.clientId);
      if (!token) return fetch(req);
      const headers = new Headers();
      for (const name of ['range', 'if-range', 'accept']) if (req.headers.has(name)) headers.set(name, req.headers.get(name));
      headers.set('authorization', `Bearer ${token}`);
      return fetch(url, { method: req.method, headers, mode: 'same-origin', credentials: 'omit', cache: 'no-store' });
    })(),
  );
});
