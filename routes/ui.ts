/**
 * The page (docs/gateway.md, "The page"): `GET /` and every page URL (`/archives/…`, `/diff`) answer
 * one small HTML document; its scripts and styles are static ES modules served from
 * `/ui/VERSION/…`. No bundler and no build step: the page's own modules live in routes/ui/ as they
 * are written, and its few libraries (preact, htm, hyparquet and the decompressors it uses) are served
 * from the installed npm packages, resolved once at start and compacted (compactVendorJs: no comment
 * lines, no indentation), so nothing is ever fetched from a CDN.
 *
 * VERSION is a hash of every asset, so asset URLs are immutable (`Cache-Control: public,
 * max-age=31536000, immutable`) and a new release changes every URL at once; the HTML itself is
 * `no-cache`. Assets are read once at start, kept in memory with their gzip encoding.
 *
 * The HTML carries a strict Content-Security-Policy: scripts only from the gateway itself plus the one
 * inline import map (allowed by its hash), no eval, no inline handlers, Trusted Types enforced (no
 * HTML strings reach the DOM; one policy, `hexz-sw`, blesses the service worker's URL and nothing else), no frames, no forms, no plugins. The page and its assets are open
 * without a bearer token: they hold nothing but code; the page asks for the token and sends it with
 * every API call.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HexzError } from '../src/errors.js';
import type { RoutePluginOptions } from '../src/gateway/http.js';

/** Immutable caching of versioned asset URLs: a year, the longest value caches honour. */
export const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Prefix of asset URLs; the version follows it. */
export const ASSET_PREFIX = '/ui/';

/** Page URLs that answer the HTML (the page routes them itself, History API). */
const PAGE_URLS = ['/', '/archives', '/archives/*', '/diff'];

/**
 * Library files the page may import, by the package that holds them: `files` are paths inside the
 * package (a trailing `/` takes every `.js` of that folder, for libraries made of relative imports),
 * served at `vendor/PACKAGE/…`. Only browser code: hyparquet's `node.js` is left out, and of
 * hyparquet-compressors only the pure-JS decompressors (its `index.js` instantiates a WebAssembly
 * snappy at import, which the CSP does not allow; hyparquet's own snappy is used instead).
 */
const VENDOR: Array<{ pkg: string; files: string[]; exclude?: string[] }> = [
  { pkg: 'preact', files: ['dist/preact.mjs', 'hooks/dist/hooks.mjs'] },
  { pkg: 'htm', files: ['dist/htm.module.js'] },
  { pkg: 'hyparquet', files: ['src/'], exclude: ['src/node.js'] },
  { pkg: 'hyparquet-compressors', files: ['src/'], exclude: ['src/index.js', 'src/compressors.js'] },
  { pkg: 'fzstd', files: ['esm/index.mjs'] },
];

/** Bare specifiers of the import map → asset paths. */
const IMPORTS: Record<string, string> = {
  preact: 'vendor/preact/dist/preact.mjs',
  'preact/hooks': 'vendor/preact/hooks/dist/hooks.mjs',
  htm: 'vendor/htm/dist/htm.module.js',
  hyparquet: 'vendor/hyparquet/src/index.js',
  'hyparquet-compressors/': 'vendor/hyparquet-compressors/src/',
  fzstd: 'vendor/fzstd/esm/index.mjs',
};

/** The page's first modules, preloaded so the browser does not discover them one import at a time. */
const PRELOAD = ['app.js', 'api.js', 'dom.js', 'format.js', 'archives.js', 'archive.js', 'tree.js', 'file.js', 'preview.js'];

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

/** One asset in memory. */
export interface UiAsset {
  body: Buffer;
  gzip: Buffer;
  type: string;
}

/** Everything the page needs, loaded once. */
export interface UiBundle {
  version: string;
  assets: Map<string, UiAsset>;
  html: string;
  csp: string;
  serviceWorker: UiAsset;
  /** Bytes of the page's own assets (routes/ui) and of the vendored libraries as served (compacted), uncompressed. */
  sizes: { own: number; vendor: number };
}

/**
 * The folder of the page's own assets: the source folder routes/ui when there is one (a checkout: what
 * you edit is what is served, built or not), else the copy next to the compiled module that the
 * Docker build and `npm run build` make (dist/routes/ui).
 */
export function uiAssetDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = path.basename(path.dirname(here)) === 'dist' ? [path.join(here, '..', '..', 'routes', 'ui'), path.join(here, 'ui')] : [path.join(here, 'ui')];
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'app.js'))) return dir;
  }
  throw new HexzError('INTERNAL', `the page's assets (routes/ui) are missing next to ${here}`);
}

/** The root folder of an installed package (walking up from what Node resolves for it). */
function packageDir(pkg: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(pkg)));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === pkg) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new HexzError('INTERNAL', `package ${pkg} is not installed (the page needs it)`);
    dir = up;
  }
}

/**
 * A vendored library module without its whole-line comments, blank lines and indentation (hyparquet
 * is mostly JSDoc: 199 KiB as published, ~140 KiB compacted), so what the browser decodes stays within
 * the page's budget without a minifier. Only whole lines go or lose their leading blanks, so every
 * line break between two tokens stays (ASI is unchanged). A file where a string may span lines (a line
 * with an odd number of backticks: a template literal opens or closes there, as in brotli's base64
 * dictionary; a line ending in a backslash) or a comment this cannot judge (code after its end on
 * the same line) is served as published. test/ui/routes.test.ts parses every served library both
 * ways and checks that the syntax trees are equal.
 */
export function compactVendorJs(src: string): string {
  const lines = src.split('\n');
  if (lines.some((l) => (l.match(/`/g)?.length ?? 0) % 2 === 1 || l.endsWith('\\'))) return src;
  const out: string[] = [];
  let inBlock = false;
  for (const line of lines) {
    const t = line.trim();
    if (inBlock) {
      if (t.includes('*/')) {
        if (!t.endsWith('*/')) return src;
        inBlock = false;
      }
      continue;
    }
    if (t === '' || t.startsWith('//')) continue;
    if (t.startsWith('/*')) {
      if (!t.includes('*/', 2)) inBlock = true;
      else if (!t.endsWith('*/') || t.indexOf('*/', 2) !== t.length - 2) return src;
      continue;
    }
    out.push(line.trimStart());
  }
  return inBlock ? src : `${out.join('\n')}\n`;
}

function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(path.join(dir, r)).isDirectory()) out.push(...filesUnder(dir, r));
    else out.push(r);
  }
  return out;
}

function asset(body: Buffer, file: string): UiAsset {
  return { body, gzip: gzipSync(body, { level: 9 }), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

/** The HTML document: versioned asset URLs, the import map, nothing inline but the map. */
function pageHtml(version: string): { html: string; importMapHash: string } {
  const base = `${ASSET_PREFIX}${version}/`;
  const imports = Object.fromEntries(Object.entries(IMPORTS).map(([k, v]) => [k, base + v]));
  const importMap = JSON.stringify({ imports });
  const importMapHash = createHash('sha256').update(importMap).digest('base64');
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<title>Hexz</title>',
    `<link rel="icon" href="${base}icon.svg" type="image/svg+xml">`,
    `<link rel="stylesheet" href="${base}style.css">`,
    `<script type="importmap">${importMap}</script>`,
    ...PRELOAD.map((m) => `<link rel="modulepreload" href="${base}${m}">`),
    `<script type="module" src="${base}app.js"></script>`,
    '</head>',
    '<body>',
    '<div id="app"><noscript><p>This page needs JavaScript. The HTTP API is described in docs/gateway.md: <a href="/v1/archives">/v1/archives</a>.</p></noscript></div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return { html, importMapHash };
}

/** The page's Content-Security-Policy, allowing exactly one inline script: the import map with this hash. */
export function pageCsp(importMapHash: string): string {
  return [
    "default-src 'none'",
    `script-src 'self' 'sha256-${importMapHash}'`,
    "style-src 'self'",
    "img-src 'self' blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types hexz-sw",
  ].join('; ');
}

/** Load the page: own assets from `dir`, libraries from node_modules, the version hash over all of them. */
export function loadUiBundle(dir = uiAssetDir()): UiBundle {
  const files = new Map<string, Buffer>();
  let own = 0;
  let vendor = 0;
  let serviceWorker: Buffer | undefined;
  for (const rel of filesUnder(dir)) {
    const body = readFileSync(path.join(dir, rel));
    // The service worker is served at a fixed URL (a worker's URL is its identity), never versioned.
    if (rel === 'sw.js') serviceWorker = body;
    else if (/\.(js|css|svg)$/.test(rel)) files.set(rel, body);
    else continue;
    own += body.byteLength;
  }
  if (!serviceWorker) throw new HexzError('INTERNAL', `the page's service worker (sw.js) is missing in ${dir}`);
  for (const v of VENDOR) {
    const root = packageDir(v.pkg);
    for (const f of v.files) {
      const list = f.endsWith('/') ? filesUnder(path.join(root, f)).filter((x) => /\.m?js$/.test(x)).map((x) => f + x) : [f];
      for (const rel of list) {
        if (v.exclude?.includes(rel)) continue;
        const body = Buffer.from(compactVendorJs(readFileSync(path.join(root, rel), 'utf8')));
        files.set(`vendor/${v.pkg}/${rel}`, body);
        vendor += body.byteLength;
      }
    }
  }
  const h = createHash('sha256');
  for (const [k, b] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(k).update('\0').update(b);
  const version = h.digest('hex').slice(0, 16);
  const assets = new Map<string, UiAsset>();
  for (const [k, b] of files) assets.set(k, asset(b, k));
  const { html, importMapHash } = pageHtml(version);
  return { version, assets, html, csp: pageCsp(importMapHash), serviceWorker: asset(serviceWorker, 'sw.js'), sizes: { own, vendor } };
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, a: UiAsset, cacheControl: string): FastifyReply {
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  reply.headers({ 'content-type': a.type, 'cache-control': cacheControl, 'x-content-type-options': 'nosniff', vary: 'Accept-Encoding' });
  if (gzip) reply.header('content-encoding', 'gzip');
  const body = gzip ? a.gzip : a.body;
  reply.header('content-length', body.byteLength);
  return reply.send(request.method === 'HEAD' ? undefined : body);
}

let sharedBundle: UiBundle | undefined;

/** The page routes: the HTML at every page URL, versioned assets, the service worker. */
export const uiRoutes: FastifyPluginAsync<RoutePluginOptions & { bundle?: UiBundle }> = async (app, opts) => {
  // Loaded once per process: every gateway of it (tests start many) serves the same files.
  const bundle = opts.bundle ?? (sharedBundle ??= loadUiBundle());
  const page = asset(Buffer.from(bundle.html), 'index.html');
  const config = { route: 'ui', public: true };

  for (const url of PAGE_URLS) {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      exposeHeadRoute: false,
      config,
      handler: (request, reply) => {
        reply.headers({ 'content-security-policy': bundle.csp, 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' });
        return sendAsset(request, reply, page, 'no-cache');
      },
    });
  }

  app.route<{ Params: { version: string; '*': string } }>({
    method: ['GET', 'HEAD'],
    url: `${ASSET_PREFIX}:version/*`,
    exposeHeadRoute: false,
    config,
    handler: (request, reply) => {
      const a = request.params.version === bundle.version ? bundle.assets.get(request.params['*']) : undefined;
      // An old page asking for assets of a previous release gets a 404: it must reload (the HTML is no-cache).
      if (!a) throw new HexzError('PATH_NOT_FOUND', `no such asset of the page: ${request.url.split('?')[0]}`);
      return sendAsset(request, reply, a, ASSET_CACHE_CONTROL);
    },
  });

  // The service worker adds the bearer token to media requests (<img>, <audio>, <video> cannot send
  // headers); a worker's scope is limited to its own folder unless the server allows more.
  app.route({
    method: ['GET', 'HEAD'],
    url: `${ASSET_PREFIX}sw.js`,
    exposeHeadRoute: false,
    config,
    handler: (request, reply) => {
      reply.header('service-worker-allowed', '/');
      return sendAsset(request, reply, bundle.serviceWorker, 'no-cache');
    },
  });
};
