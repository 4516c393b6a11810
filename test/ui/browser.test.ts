/// <reference lib="dom" />
// (The callbacks given to page.evaluate and locator.evaluate run in the browser: DOM types.)
/**
 * The page in a real browser (Debian's Chromium through playwright-core, headless): open `/`, click
 * down to a file three directories deep, preview text, CSV, Parquet, an image, audio and binary
 * files; go back; count the bytes a preview of a 1 GiB file reads (≤ 1 MiB); use the page with the
 * keyboard alone; a bearer-token gateway (token form, media through the service worker); no CSP
 * violation, no script error, file names and contents never become markup. Saves the README's
 * screenshots to docs/ when HEXZ_SCREENSHOTS=1.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { packArchive } from '../gateway/fixture.js';
import { GIB, haveChromium, launchBrowser, TABLE_ROWS, writeUiDataset } from './fixture.js';

const TOKEN = 'page-test-token';
/** expect.poll with room for a loaded machine (2 shared cores): the page renders after its requests. */
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: 20_000, interval: 100 });
let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
let authGw: Gateway;
let browser: { context: BrowserContext; close: () => Promise<void> };

/** What a page did: every request, script errors, CSP violations, dialogs (an alert would be an injection). */
interface Watch {
  requests: Request[];
  errors: string[];
}

async function openPage(url: string): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.context.newPage();
  const watch: Watch = { requests: [], errors: [] };
  page.on('request', (r) => watch.requests.push(r));
  page.on('pageerror', (e) => watch.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // The browser logs every 401/403 answer it gets; those are expected here (no token yet, an archive without its key).
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 40[13]/.test(m.text())) watch.errors.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    watch.errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(url);
  return { page, watch };
}

/** Body bytes of the responses to requests for `pathPart` (from Content-Length: ranges are never chunked). */
async function bytesFetched(watch: Watch, pathPart: string): Promise<{ requests: number; bytes: number }> {
  let bytes = 0;
  let requests = 0;
  for (const r of watch.requests) {
    if (!decodeURIComponent(r.url()).includes(pathPart)) continue;
    requests++;
    const res = await r.response();
    if (res && r.method() !== 'HEAD') bytes += Number((await res.allHeaders())['content-length'] ?? (await res.body()).byteLength);
  }
  return { requests, bytes };
}

async function shot(page: Page, file: string, fullPage = false): Promise<void> {
  if (process.env.HEXZ_SCREENSHOTS !== '1') return;
  await page.screenshot({ path: path.join(import.meta.dirname, '..', '..', 'docs', file), fullPage });
}

beforeAll(async () => {
  if (!haveChromium) return;
  tmp = await makeTempDir('hexz-ui-browser-');
  const v1 = path.join(tmp.dir, 'v1');
  const v2 = path.join(tmp.dir, 'v2');
  const root = path.join(tmp.dir, 'archives');
  await writeUiDataset(v1, v2, path.join(tmp.dir, 'huge'));
  await packArchive(v1, root, 'datasets/weather-v1');
  await packArchive(v2, root, 'datasets/weather-v2', { bases: [path.join(root, 'datasets/weather-v1.hxz')] });
  await packArchive(path.join(tmp.dir, 'huge'), root, 'scratch/huge');
  // Encrypted, and the gateway has no key for it.
  await packArchive(v1, root, 'secret', { key: { kind: 'key', key: randomBytes(32) } });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
  const tokens = path.join(tmp.dir, 'tokens');
  await fs.writeFile(tokens, `${TOKEN}\n`);
  authGw = await startGateway({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [tokens] }, { processMetrics: false });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await authGw?.close();
  await tmp?.cleanup();
});

describe.skipIf(!haveChromium)('the page in Chromium', () => {
  it('clicks from / down to a file three directories deep, previews it as text, and goes back', async () => {
    const { page, watch } = await openPage(`${gw.url}/`);
    await page.getByRole('link', { name: 'datasets/weather-v2' }).click();
    await page.waitForURL('**/archives/datasets/weather-v2');
    await page.getByRole('heading', { name: 'Bytes' }).waitFor();
    // The picture of where the bytes are: shared with the base, holes (the 1 GiB sparse file).
    const legend = await page.locator('.legend').first().innerText();
    expect(legend).toMatch(/stored here\s*5\d\d KiB/); // bin/new.bin once, the chunk of data/sparse.img with data, small new files
    expect(legend).toMatch(/deduplicated inside\s*293 KiB/); // bin/new-copy.bin (300 000 bytes)
    expect(legend).toMatch(/shared with\s*datasets\/weather-v1\s*3\d\d KiB/);
    expect(legend).toMatch(/holes[^\n]*\s*256 KiB/); // the zero chunk of data/sparse.img
    await shot(page, 'ui-archive.png', true);
    for (const dir of ['data/', '2026/', 'jan/']) {
      await page.locator('td.name a', { hasText: dir }).first().click();
      await page.getByRole('heading', { level: 1, name: new RegExp(`${dir}$`) }).waitFor();
    }
    expect(new URL(page.url()).pathname).toBe('/archives/datasets/weather-v2/tree/data/2026/jan/');
    await page.getByRole('link', { name: /notes\.txt/ }).click();
    await page.waitForURL('**/archives/datasets/weather-v2/files/data/2026/jan/notes.txt');
    await poll(() => page.locator('pre.text-body').innerText()).toContain('Three levels down: hello from the page tests.');
    // Breadcrumbs name every level.
    await expect(page.locator('.crumbs li').allInnerTexts()).resolves.toEqual(['Archives', 'datasets/weather-v2', 'files', 'data', '2026', 'jan', 'notes.txt']);
    await page.goBack();
    await page.waitForURL('**/tree/data/2026/jan/');
    await page.getByRole('link', { name: /notes\.txt/ }).waitFor();
    await page.goBack();
    await page.waitForURL('**/tree/data/2026/');
    await page.goForward();
    await page.waitForURL('**/tree/data/2026/jan/');
    // A deep link opened directly shows the same view.
    await page.goto(`${gw.url}/archives/datasets/weather-v2/files/data/2026/jan/notes.txt`);
    await poll(() => page.locator('pre.text-body').innerText()).toContain('Three levels down');
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('previews CSV and Parquet as tables, JSON pretty-printed, an image, audio, and binary as hex', async () => {
    const base = `${gw.url}/archives/datasets/weather-v2/files`;
    const { page, watch } = await openPage(`${base}/data/table.csv`);
    const csv = page.locator('table.data');
    await csv.waitFor();
    await expect(csv.locator('thead th').allInnerTexts()).resolves.toEqual(['#', 'station', 'day', 'temperature', 'note']);
    await expect(csv.locator('tbody tr').count()).resolves.toBe(TABLE_ROWS);
    await expect(csv.locator('tbody tr').nth(3).locator('td').allInnerTexts()).resolves.toEqual(['4', 'st3', '3', '26.5', 'row 3, quoted']);

    await page.goto(`${base}/data/table.parquet`);
    const pq = page.locator('table.data');
    await pq.waitFor();
    await expect(pq.locator('thead th').allInnerTexts()).resolves.toEqual(['#', 'station', 'day', 'temperature']);
    await expect(pq.locator('tbody tr').count()).resolves.toBe(100);
    await expect(pq.locator('tbody tr').nth(2).locator('td').allInnerTexts()).resolves.toEqual(['3', 'st2', '2', '29.5']);
    await shot(page, 'ui-preview.png');
    await page.getByRole('button', { name: 'Read 100 more rows' }).click();
    await poll(() => pq.locator('tbody tr').count()).toBe(200);
    // Read by range: every Parquet request is a Range request.
    const pqRequests = watch.requests.filter((r) => r.url().endsWith('/v1/archives/datasets/weather-v2/files/data/table.parquet') && r.method() === 'GET');
    expect(pqRequests.length).toBeGreaterThan(0);
    for (const r of pqRequests) expect((await r.allHeaders()).range).toMatch(/^bytes=\d+-\d+$/);

    await page.goto(`${base}/data/manifest.json`);
    await poll(() => page.locator('pre.text-body').innerText()).toContain('"nested": {\n    "a": [\n      1,');

    await page.goto(`${base}/images/gradient.png`);
    const img = page.locator('.preview.image img');
    await img.waitFor();
    await poll(() => img.evaluate((e: HTMLImageElement) => e.complete && e.naturalWidth)).toBe(320);

    await page.goto(`${base}/media/tone.wav`);
    const audio = page.locator('audio');
    await audio.waitFor();
    await poll(() => audio.evaluate((e: HTMLAudioElement) => e.duration)).toBeCloseTo(4, 1);
    await audio.evaluate((e: HTMLAudioElement) => (e.currentTime = 3));
    await poll(() => audio.evaluate((e: HTMLAudioElement) => e.seekable.length > 0 && e.seekable.end(0))).toBeCloseTo(4, 1);

    await page.goto(`${base}/bin/random.bin`);
    const hex = page.locator('pre.hex-body');
    await hex.waitFor();
    await poll(() => hex.innerText()).toMatch(/^00000000 {2}([0-9a-f]{2} ){8} ([0-9a-f]{2} ){8} \|.{16}\|/);
    await poll(() => hex.innerText()).toMatch(/\n00000ff0 {2}/);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('the preview of a 1 GiB file reads at most 1 MiB', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/huge/files/sparse.img`);
    await page.locator('pre.hex-body').waitFor();
    await expect(page.locator('.more-bar').innerText()).resolves.toContain('1.00 GiB');
    await page.getByRole('button', { name: 'Read 4 KiB more' }).click();
    await poll(() => page.locator('pre.hex-body').innerText()).toMatch(/\n00001ff0 {2}/);
    const got = await bytesFetched(watch, '/v1/archives/scratch/huge/files/sparse.img');
    expect(got.requests).toBeGreaterThan(0);
    expect(got.bytes).toBeGreaterThan(0);
    expect(got.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(GIB).toBe(1024 ** 3);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('pages through a large directory, sorts and filters it', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/datasets/weather-v2/tree/many/`);
    const rows = page.locator('table.files tbody tr');
    await poll(() => rows.count()).toBe(201); // '..' and the first page of 200
    await page.getByRole('button', { name: 'Load 200 more entries' }).click();
    await poll(() => rows.count()).toBe(251);
    await page.getByLabel('Filter names').fill('file-24');
    await poll(() => rows.count()).toBe(1 + 10);
    await page.getByLabel('Filter names').fill('');
    await page.getByRole('button', { name: 'Name' }).click(); // descending
    await expect(rows.nth(1).innerText()).resolves.toContain('file-249.txt');
    const listing = watch.requests.filter((r) => r.url().includes('/v1/archives/datasets/weather-v2/tree/many'));
    expect(listing.map((r) => new URL(r.url()).searchParams.has('cursor'))).toEqual([false, true]);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('shows what changed from the base', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/datasets/weather-v2`);
    await page.getByRole('link', { name: 'what changed' }).click();
    await page.waitForURL('**/diff?from=datasets%2Fweather-v1&to=datasets%2Fweather-v2');
    await page.locator('.summary').waitFor();
    const summary = await page.locator('.summary').innerText();
    expect(summary).toMatch(/5\s*added/); // docs/added.txt, bin/new.bin, bin/new-copy.bin, data/sparse.img, the hostile name
    expect(summary).toMatch(/1\s*deleted/);
    expect(summary).toMatch(/1\s*modified/);
    expect(summary).toMatch(/1\s*renamed/);
    await expect(page.locator('table.renamed').innerText()).resolves.toMatch(/docs\/old-name\.txt\s+docs\/new-name\.txt/);
    await expect(page.locator('table.modified').innerText()).resolves.toContain('data/2026/jan/notes.txt');
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('is usable with the keyboard alone', async () => {
    const { page, watch } = await openPage(`${gw.url}/`);
    await page.getByRole('link', { name: 'datasets/weather-v2' }).waitFor();
    /** Press Tab until the focused element's text matches, then Enter. */
    const tabTo = async (re: RegExp) => {
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab');
        const text = await page.evaluate(() => (document.activeElement as HTMLElement | null)?.innerText ?? '');
        if (re.test(text)) return page.keyboard.press('Enter');
      }
      throw new Error(`no focusable element matching ${re}`);
    };
    await tabTo(/^datasets\/weather-v2$/);
    await page.waitForURL('**/archives/datasets/weather-v2');
    await page.locator('td.name a', { hasText: 'docs/' }).waitFor();
    // Focus moved to the new view: tabbing continues from its start, not from the old link.
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('main');
    await tabTo(/docs\/$/);
    await page.waitForURL('**/tree/docs/');
    await tabTo(/added\.txt$/);
    await page.waitForURL('**/files/docs/added.txt');
    await poll(() => page.locator('pre.text-body').innerText()).toBe('new in v2\n');
    // Back with the keyboard (Alt+Left is the browser's; history.back is what it does).
    await page.goBack();
    await page.waitForURL('**/tree/docs/');
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('an encrypted archive without a key on the gateway shows only what the API shows', async () => {
    const { page, watch } = await openPage(`${gw.url}/`);
    const row = page.locator('tr', { has: page.getByRole('link', { name: 'secret', exact: true }) });
    await poll(() => row.innerText()).toMatch(/secret\s+[\d.]+ KiB[\s\S]*encrypted, no key/);
    await row.getByRole('link', { name: 'secret', exact: true }).click();
    await poll(() => page.locator('[role=alert]').innerText()).toMatch(/KEY_REQUIRED[\s\S]*no key for it/);
    await expect(page.locator('.facts, .tree, .bar').count()).resolves.toBe(0);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('shows hostile names and contents as text, never as markup', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/datasets/weather-v2/tree/docs/`);
    const link = page.getByRole('link', { name: /<img src=x onerror=alert\(1\)>\.txt/ });
    await link.click();
    await expect(page.locator('h1').innerText()).resolves.toBe('<img src=x onerror=alert(1)>.txt');
    await expect(page.locator('img').count()).resolves.toBe(0);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('works with a bearer token: asks for it, sends it, and media get it through the service worker', async () => {
    const { page, watch } = await openPage(`${authGw.url}/`);
    await page.getByRole('textbox', { name: 'Token' }).fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'datasets/weather-v2' }).waitFor();
    // The token never reaches a URL or a cookie; it lives in sessionStorage for this tab.
    await expect(page.evaluate(() => sessionStorage.getItem('hexz.token'))).resolves.toBe(TOKEN);
    expect((await browser.context.cookies()).length).toBe(0);
    await page.goto(`${authGw.url}/archives/datasets/weather-v2/files/images/gradient.png`);
    const img = page.locator('.preview.image img');
    await img.waitFor();
    await poll(() => img.evaluate((e: HTMLImageElement) => e.complete && e.naturalWidth)).toBe(320);
    await page.goto(`${authGw.url}/archives/datasets/weather-v2/files/media/tone.wav`);
    const audio = page.locator('audio');
    await audio.waitFor();
    // The element's own URL, not a blob: the service worker lent it the token, so it reads by range.
    await expect(audio.getAttribute('src')).resolves.toBe('/v1/archives/datasets/weather-v2/files/media/tone.wav');
    await poll(() => audio.evaluate((e: HTMLAudioElement) => e.duration)).toBeCloseTo(4, 1);
    await page.goto(`${authGw.url}/archives/datasets/weather-v2/files/data/table.parquet`);
    await poll(() => page.locator('table.data tbody tr').count()).toBe(100);
    const unauthorized = [];
    for (const r of watch.requests) if ((await r.response())?.status() === 401) unauthorized.push(r.url());
    // Only the first listing, before the token was given.
    expect(unauthorized).toEqual([`${authGw.url}/v1/archives?limit=100`]);
    expect(watch.errors).toEqual([]);
    await page.close();
  });
});
