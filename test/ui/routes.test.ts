/**
 * The page's routes without a browser: the HTML at every page URL with its Content-Security-Policy
 * (the import map allowed by its hash, nothing else inline), versioned assets with immutable caching
 * and gzip, the service worker's own URL and scope, the page open without a token while the API is
 * not, the size budget of the page's own assets (≤ 250 KiB; the vendored libraries are counted
 * and reported separately), and the compaction of the vendored libraries (same syntax tree as published).
 */
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ts from 'typescript';
import { ASSET_CACHE_CONTROL, compactVendorJs, loadUiBundle } from '@hexz/routes/ui.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get } from '../gateway/fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
const bundle = loadUiBundle();

beforeAll(async () => {
  tmp = await makeTempDir('hexz-ui-routes-');
  const tokens = path.join(tmp.dir, 'tokens');
  await fs.writeFile(tokens, 'sesame\n');
  gw = await startGateway({ storage: path.join(tmp.dir, 'archives'), port: 0, logLevel: 'silent', authTokenFiles: [tokens] }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

/** The version and asset paths an HTML page refers to. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:href|src)="(\/ui\/[^"]+)"/g)].map((m) => m[1]);
}

describe('the page routes', () => {
  it('answers the HTML at /, /archives/… and /diff, without a token, with a strict CSP', async () => {
    for (const url of ['/', '/archives', '/archives/team/ds/v2/tree/a/b/', '/archives/x/files/a.csv', '/diff?to=x']) {
      const r = await get(`${gw.url}${url}`);
      expect(r.status, url).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expect(r.body.toString()).toContain(`<script type="module" src="/ui/${bundle.version}/app.js"></script>`);
    }
    const r = await get(`${gw.url}/`);
    const csp = r.headers.get('content-security-policy')!;
    const html = r.body.toString();
    // Exactly one inline script, the import map, allowed by its hash; no 'unsafe-*', no eval.
    const inline = [...html.matchAll(/<script type="importmap">([^<]*)<\/script>/g)].map((m) => m[1]);
    expect(inline.length).toBe(1);
    expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(inline[0]).digest('base64')}'`);
    expect(csp).not.toMatch(/unsafe-(inline|eval)|wasm-unsafe-eval|\*/);
    // default-src 'none' covers objects, frames and fonts; Trusted Types allow only the service worker's policy.
    for (const d of ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'", 'trusted-types hexz-sw']) expect(csp).toContain(d);
    expect([...html.matchAll(/<script(?![^>]*type="importmap")(?![^>]*src=)[^>]*>/g)].length).toBe(0);
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    // The API itself still needs the token.
    expect((await get(`${gw.url}/v1/archives`)).status).toBe(401);
  });

  it('serves versioned assets with immutable caching and gzip; other versions are 404', async () => {
    const html = (await get(`${gw.url}/`)).body.toString();
    const urls = assetUrls(html);
    expect(urls.length).toBeGreaterThan(5);
    for (const u of urls) {
      const r = await get(`${gw.url}${u}`, { 'accept-encoding': 'gzip' });
      expect(r.status, u).toBe(200);
      expect(r.headers.get('cache-control')).toBe(ASSET_CACHE_CONTROL);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      const plain = await get(`${gw.url}${u}`, { 'accept-encoding': 'identity' });
      // fetch decodes gzip itself: both answers carry the same bytes.
      expect(r.body.equals(plain.body)).toBe(true);
    }
    const js = await get(`${gw.url}/ui/${bundle.version}/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const map = JSON.parse(/<script type="importmap">([^<]*)<\/script>/.exec(html)![1]);
    for (const target of Object.values<string>(map.imports)) {
      if (target.endsWith('/')) continue;
      expect((await get(`${gw.url}${target}`)).status, target).toBe(200);
    }
    expect((await get(`${gw.url}/ui/0000000000000000/app.js`)).status).toBe(404);
    expect((await get(`${gw.url}/ui/${bundle.version}/nope.js`)).status).toBe(404);
    // hyparquet-compressors' index.js would instantiate WebAssembly at import: not served.
    expect((await get(`${gw.url}/ui/${bundle.version}/vendor/hyparquet-compressors/src/index.js`)).status).toBe(404);
    const gz = bundle.assets.get('app.js')!;
    expect(gunzipSync(gz.gzip).equals(gz.body)).toBe(true);
  });

  it('serves the service worker at a fixed URL allowed to control the whole origin', async () => {
    const r = await get(`${gw.url}/ui/sw.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get('service-worker-allowed')).toBe('/');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(r.body.toString()).toContain("addEventListener('fetch'");
  });

  it("keeps the page's own assets within 250 KiB (libraries reported apart)", () => {
    console.log(`page assets: own ${(bundle.sizes.own / 1024).toFixed(1)} KiB, vendored libraries ${(bundle.sizes.vendor / 1024).toFixed(1)} KiB (uncompressed)`);
    expect(bundle.sizes.own).toBeLessThanOrEqual(250 * 1024);
    expect(bundle.sizes.vendor).toBeGreaterThan(0);
  });
});

/** Every node of a module's syntax tree in order, as kind and (for tokens) text: equal lists, equal programs. */
function syntaxOf(src: string, file: string): string[] {
  const sf = ts.createSourceFile(file, src, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const out: string[] = [];
  const walk = (n: ts.Node) => {
    // JSDoc comments are nodes of a JS file's tree in TypeScript: comments, not code, so left out.
    const kids = n.getChildren(sf).filter((k) => k.kind < ts.SyntaxKind.FirstJSDocNode || k.kind > ts.SyntaxKind.LastJSDocNode);
    out.push(kids.length ? ts.SyntaxKind[n.kind] : `${ts.SyntaxKind[n.kind]} ${n.getText(sf)}`);
    for (const k of kids) walk(k);
  };
  walk(sf);
  return out;
}

describe('the vendored libraries, compacted', () => {
  it('keep the syntax tree of the published files, and shrink them', () => {
    let published = 0;
    let served = 0;
    for (const [rel, a] of bundle.assets) {
      const m = /^vendor\/((?:@[^/]+\/)?[^/]+)\/(.+)$/.exec(rel);
      if (!m) continue;
      const original = readFileSync(path.join(import.meta.dirname, '..', '..', 'node_modules', m[1], m[2]), 'utf8');
      expect(a.body.toString(), rel).toBe(compactVendorJs(original));
      expect(syntaxOf(a.body.toString(), rel), rel).toEqual(syntaxOf(original, rel));
      published += Buffer.byteLength(original);
      served += a.body.byteLength;
    }
    console.log(`vendored libraries: ${(published / 1024).toFixed(1)} KiB published, ${(served / 1024).toFixed(1)} KiB served`);
    expect(served).toBeLessThan(published * 0.8);
  });

  it('drop only whole comment lines, blank lines and indentation; anything else is served as published', () => {
    expect(compactVendorJs('/**\n * doc\n */\nexport function f(a) {\n  // why\n\n  return a // kept\n}\n')).toBe('export function f(a) {\nreturn a // kept\n}\n');
    expect(compactVendorJs('const re = /x/\n  /* one line */\nf()\n')).toBe('const re = /x/\nf()\n');
    // A comment with code after it on its line, or one never closed: left as it is.
    for (const src of ['/* c */ f()\n', '/* a\n */ f()\n', '/* open\nf()\n', '/* a */ /* b */\n']) expect(compactVendorJs(src)).toBe(src);
    // A string that may span lines (a template literal, a backslash continuation): served as published.
    for (const src of ['const s = `\n// not a comment\n  indented\n`\n', "const s = 'a\\\n  b'\n"]) expect(compactVendorJs(src)).toBe(src);
  });
});
