/**
 * The HTML directory index: the pure renderer against nginx's exact autoindex layout (table tests),
 * and the route through a real gateway: directory URLs ending in `/`, symlinks followed, names that
 * need escaping, a directory larger than one listing page (streamed), HEAD, errors, `wget -r`
 * mirroring a directory through the index, and bearer tokens.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoindexDate, autoindexHead, autoindexRow, escapeHtml, NAME_COLUMN, renderAutoindex } from '@hexz/src/gateway/autoindex.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { AUTOINDEX_PAGE_ENTRIES } from '@hexz/routes/autoindex.js';
import { run } from '../helpers/cli.js';
import { writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, packArchive, writeDataset } from './fixture.js';

const JAN2 = Date.UTC(2026, 0, 2, 3, 4, 5);

describe('autoindex renderer (nginx layout)', () => {
  it.each([
    [{ name: 'a.txt', directory: false, size: 123, mtimeMs: JAN2 }, `<a href="a.txt">a.txt</a>${' '.repeat(NAME_COLUMN + 1 - 5)}02-Jan-2026 03:04 ${'123'.padStart(19)}\r\n`],
    [{ name: 'sub', directory: true, size: 0, mtimeMs: JAN2 }, `<a href="sub/">sub/</a>${' '.repeat(NAME_COLUMN + 1 - 4)}02-Jan-2026 03:04 ${' '.repeat(18)}-\r\n`],
    // The link is one encoded URL segment; the text is escaped HTML.
    [{ name: 'a b#?&<x>.txt', directory: false, size: 1, mtimeMs: JAN2 }, `<a href="a%20b%23%3F%26%3Cx%3E.txt">a b#?&amp;&lt;x&gt;.txt</a>${' '.repeat(NAME_COLUMN + 1 - 13)}02-Jan-2026 03:04 ${'1'.padStart(19)}\r\n`],
    // Names over 50 characters are cut to 47 + "..>", counted in characters (never inside a UTF-8 sequence).
    [{ name: `${'é'.repeat(60)}`, directory: false, size: 9, mtimeMs: 0 }, `<a href="${encodeURIComponent('é'.repeat(60))}">${'é'.repeat(47)}..&gt;</a> 01-Jan-1970 00:00 ${'9'.padStart(19)}\r\n`],
    [{ name: "it's", directory: false, size: 10 ** 12, mtimeMs: JAN2 }, `<a href="it&#39;s">it&#39;s</a>${' '.repeat(NAME_COLUMN + 1 - 4)}02-Jan-2026 03:04 ${'1000000000000'.padStart(19)}\r\n`],
  ])('row %#', (entry, line) => {
    expect(autoindexRow(entry)).toBe(line);
  });

  it('head, tail and the order of a whole page (directories first, then by bytes)', () => {
    expect(autoindexHead('/v1/archives/demo/files/data/', true)).toBe(
      '<html>\r\n<head><title>Index of /v1/archives/demo/files/data/</title></head>\r\n<body>\r\n<h1>Index of /v1/archives/demo/files/data/</h1><hr><pre><a href="../">../</a>\r\n',
    );
    expect(autoindexHead('/x/<b>/', false)).not.toContain('../');
    expect(autoindexHead('/x/<b>/', false)).toContain('Index of /x/&lt;b&gt;/');
    const page = renderAutoindex('/d/', [
      { name: 'b.txt', directory: false, size: 1, mtimeMs: 0 },
      { name: 'Z', directory: true, size: 0, mtimeMs: 0 },
      { name: 'a.txt', directory: false, size: 1, mtimeMs: 0 },
    ]);
    expect([...page.matchAll(/href="([^"]+)"/g)].map((m) => m[1])).toEqual(['../', 'Z/', 'a.txt', 'b.txt']);
    expect(page.endsWith('</pre><hr></body>\r\n</html>\r\n')).toBe(true);
  });

  it('dates and escaping', () => {
    expect(autoindexDate(Date.UTC(2025, 11, 31, 23, 59))).toBe('31-Dec-2025 23:59');
    expect(autoindexDate(Number.NaN)).toBe('01-Jan-1970 00:00');
    expect(escapeHtml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
  });
});

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
let authGw: Gateway;
let base: string;
const MANY = AUTOINDEX_PAGE_ENTRIES + 234;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-autoindex-');
  const data = path.join(tmp.dir, 'data');
  const root = path.join(tmp.dir, 'archives');
  await writeDataset(data);
  const many: Record<string, string> = {};
  for (let i = 0; i < MANY; i++) many[`many/f${String(i).padStart(5, '0')}.txt`] = `${i}\n`;
  await writeTree(data, { ...many, 'odd/a b#1?.txt': 'odd\n', 'odd/<script>.txt': 'x\n' });
  await fs.symlink('../docs', path.join(data, 'odd', 'docs-link'));
  await packArchive(data, root, 'demo');
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
  base = `${gw.url}/v1/archives`;
  const tokens = path.join(tmp.dir, 'tokens');
  await fs.writeFile(tokens, 'sesame\n');
  authGw = await startGateway({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [tokens] }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await authGw?.close();
  await tmp?.cleanup();
});

/** The `href`s of an index page. */
const hrefs = (html: string) => [...html.matchAll(/<a href="([^"]+)">/g)].map((m) => m[1]);

describe('directory index route', () => {
  it('answers a directory URL ending in / with the nginx-shaped HTML index', async () => {
    const r = await get(`${base}/demo/files/docs/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'.*sandbox/);
    const html = r.body.toString('utf8');
    expect(html).toContain('<title>Index of /v1/archives/demo/files/docs/</title>');
    expect(hrefs(html)).toEqual(['../', 'deep/', 'readme.md']);
    expect(html).toMatch(/<a href="readme.md">readme.md<\/a> +02-Jan-2026 03:04 +40\r\n/);
  });

  it('the top of the archive has no ../ and lists symlinks as what they lead to (broken or outside: left out)', async () => {
    const top = hrefs((await get(`${base}/demo/files/`)).body.toString());
    expect(top).toEqual(expect.arrayContaining(['data/', 'docs/', 'empty.txt', 'emptydir/', 'link', 'many/', 'odd/', 'unicode/']));
    expect(top).not.toContain('../');
    expect(top).not.toContain('out'); // ../../etc/passwd: outside the archive
    const odd = (await get(`${base}/demo/files/odd/`)).body.toString();
    expect(hrefs(odd)).toEqual(['../', '%3Cscript%3E.txt', 'a%20b%231%3F.txt', 'docs-link/']); // the archive's order: by bytes
    expect(odd).not.toContain('<script>');
    // The link of an escaped name leads back to the file.
    const f = await get(`${base}/demo/files/odd/a%20b%231%3F.txt`);
    expect(f.body.toString()).toBe('odd\n');
    // A symlinked directory lists through its link.
    expect(hrefs((await get(`${base}/demo/files/odd/docs-link/`)).body.toString())).toEqual(['../', 'deep/', 'readme.md']);
  });

  it('streams a directory larger than one listing page, in name order', async () => {
    const html = (await get(`${base}/demo/files/many/`)).body.toString();
    const names = hrefs(html).slice(1);
    expect(names.length).toBe(MANY);
    expect(names[0]).toBe('f00000.txt');
    expect(names[MANY - 1]).toBe(`f${String(MANY - 1).padStart(5, '0')}.txt`);
    expect(html.endsWith('</pre><hr></body>\r\n</html>\r\n')).toBe(true);
  });

  it('HEAD, a query string (ignored, as nginx does), errors, and the JSON API unchanged', async () => {
    expect(hrefs((await get(`${base}/demo/files/docs/?C=M;O=A`)).body.toString())).toEqual(['../', 'deep/', 'readme.md']);
    const h = await get(`${base}/demo/files/docs/`, {}, 'HEAD');
    expect(h.status).toBe(200);
    expect(h.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(h.body.byteLength).toBe(0);
    for (const [url, status, code] of [
      [`${base}/demo/files/nope/`, 404, 'PATH_NOT_FOUND'],
      [`${base}/demo/files/docs/readme.md/`, 404, 'NOT_A_DIRECTORY'],
      [`${base}/nope/files/`, 404, 'ARCHIVE_NOT_FOUND'],
    ] as const) {
      const r = await get(url);
      expect(r.status, url).toBe(status);
      expect(JSON.parse(r.body.toString()).error.code, url).toBe(code);
    }
    // Without the slash a directory is still not a file (no redirects), and /tree is still JSON.
    expect((await get(`${base}/demo/files/docs`)).status).toBe(404);
    expect((await get(`${base}/demo/tree/docs/`)).headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('wget -r mirrors a directory through the index', async () => {
    const out = path.join(tmp.dir, 'wget');
    const r = await run('wget', ['-q', '-r', '-np', '-nH', '--cut-dirs=4', '-R', 'index.html*', '-P', out, `${base}/demo/files/docs/`]);
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(await fs.readFile(path.join(out, 'docs', 'readme.md'), 'utf8')).toBe('# Readme\n\nHello from the gateway tests.\n');
    expect(await fs.readFile(path.join(out, 'docs', 'deep', 'a', 'b', 'c.txt'), 'utf8')).toBe('deep\n');
  });

  it('needs the bearer token like every archive URL', async () => {
    expect((await get(`${authGw.url}/v1/archives/demo/files/docs/`)).status).toBe(401);
    expect((await get(`${authGw.url}/v1/archives/demo/files/docs/`, { authorization: 'Bearer sesame' })).status).toBe(200);
  });
});
