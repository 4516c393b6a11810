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
import { ACTIVE_HTML, BIG_PARQUET_ROWS, encodeTestVideo, GIB, haveChromium, launchBrowser, LONG_TEXT_LINES, longText, TABLE_ROWS, VIDEO_SECONDS, writeUiDataset } from './fixture.js';

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
  browser = await launchBrowser();
  const video = await encodeTestVideo(browser.context);
  await writeUiDataset(v1, v2, path.join(tmp.dir, 'huge'), { dir: path.join(tmp.dir, 'more'), video });
  await packArchive(v1, root, 'datasets/weather-v1');
  await packArchive(v2, root, 'datasets/weather-v2', { bases: [path.join(root, 'datasets/weather-v1.hxz')] });
  await packArchive(path.join(tmp.dir, 'huge'), root, 'scratch/huge');
  await packArchive(path.join(tmp.dir, 'more'), root, 'scratch/more');
  // A single-file archive: its content is at /disk.
  await packArchive(path.join(v2, 'bin', 'random.bin'), root, 'scratch/single');
  // Encrypted, and the gateway has no key for it.
  await packArchive(v1, root, 'secret', { key: { kind: 'key', key: randomBytes(32) } });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
  const tokens = path.join(tmp.dir, 'tokens');
  await fs.writeFile(tokens, `${TOKEN}\n`);
  authGw = await startGateway({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [tokens] }, { processMetrics: false });
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
    // The picture itself: one segment per kind, each as wide as its share of the logical bytes (550, 293, 364, 256 KiB of 1.43 MiB).
    const bar = page.locator('.picture .bar').first();
    const barWidth = (await bar.boundingBox())!.width;
    const segs = await bar.locator('.seg').evaluateAll((els) => els.map((e) => ({ cls: e.className, share: e.getBoundingClientRect().width })));
    expect(segs.map((x) => x.cls)).toEqual(['seg seg-own', 'seg seg-dedup', 'seg seg-base seg-base-0', 'seg seg-hole']);
    const shares = segs.map((x) => x.share / barWidth);
    for (const [got, want] of shares.map((g, i) => [g, [0.375, 0.2, 0.25, 0.175][i]])) expect(Math.abs(got - want)).toBeLessThan(0.03);
    await expect(bar.getAttribute('aria-label')).resolves.toMatch(/^Logical bytes: stored here \d+ %, deduplicated inside \d+ %, shared with datasets\/weather-v1 \d+ %, holes/);
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
    console.log(`preview of the 1 GiB file: ${got.requests} requests, ${got.bytes} bytes of body`);
    expect(got.requests).toBeGreaterThan(0);
    expect(got.bytes).toBeGreaterThan(0);
    expect(got.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(GIB).toBe(1024 ** 3);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('reads a long text 64 KiB at a time, more on demand, decoded whole at the end', async () => {
    const url = '/v1/archives/scratch/more/files/text/long.txt';
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/more/files/text/long.txt`);
    const body = page.locator('pre.text-body');
    await poll(() => body.textContent()).toContain('line 00001 of the long text');
    await expect(page.locator('.more-bar').innerText()).resolves.toMatch(/^64\.0 KiB of 19\d KiB shown/);
    expect(await body.textContent()).not.toContain(`line ${LONG_TEXT_LINES} `);
    const more = page.getByRole('button', { name: 'Read 64 KiB more' });
    for (let step = 2; step <= 4; step++) {
      await more.click();
      await poll(() => watch.requests.filter((r) => r.url().endsWith(url) && r.method() === 'GET').length).toBe(step);
      if (step < 4) await poll(() => page.locator('.more-bar').innerText()).toMatch(new RegExp(`^${step * 64}(\\.0)? KiB of`));
    }
    await poll(() => body.textContent()).toBe(longText());
    await expect(more.count()).resolves.toBe(0);
    // Four ranges of 64 KiB (the last one cut at the end of the file), never the whole file at once.
    const ranges = [];
    for (const r of watch.requests.filter((r) => r.url().endsWith(url) && r.method() === 'GET')) ranges.push((await r.allHeaders()).range);
    const size = Buffer.byteLength(longText());
    expect(ranges).toEqual(['bytes=0-65535', 'bytes=65536-131071', 'bytes=131072-196607', `bytes=196608-${size - 1}`]);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('plays a video in <video>, seeks in it, read by range', async () => {
    const url = '/v1/archives/scratch/more/files/media/clip.webm';
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/more/files/media/clip.webm`);
    const video = page.locator('.preview.media video');
    await video.waitFor();
    await expect(page.locator('h2', { hasText: 'Preview' }).innerText()).resolves.toMatch(/video$/);
    // The file URL itself (no blob): the browser reads it by range and can seek.
    await expect(video.getAttribute('src')).resolves.toBe(url);
    await poll(() => video.evaluate((e: HTMLVideoElement) => e.readyState >= 1 && e.duration)).toBeCloseTo(VIDEO_SECONDS, 1);
    await expect(video.evaluate((e: HTMLVideoElement) => [e.videoWidth, e.videoHeight])).resolves.toEqual([160, 120]);
    await poll(() => video.evaluate((e: HTMLVideoElement) => e.seekable.length > 0 && e.seekable.end(0))).toBeCloseTo(VIDEO_SECONDS, 1);
    await video.evaluate((e: HTMLVideoElement) => {
      e.currentTime = 2.2;
    });
    await poll(() => video.evaluate((e: HTMLVideoElement) => !e.seeking && e.readyState >= 2 && e.currentTime)).toBeCloseTo(2.2, 1);
    const media = watch.requests.filter((r) => r.url().endsWith(url) && r.method() === 'GET');
    expect(media.length).toBeGreaterThan(0);
    for (const r of media) expect((await r.allHeaders()).range).toMatch(/^bytes=\d+-\d*$/);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('previews a Parquet file of 20 row groups from its footer and first row group only', async () => {
    const url = '/v1/archives/scratch/more/files/tables/big.parquet';
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/more/files/tables/big.parquet`);
    const table = page.locator('table.data');
    await poll(() => table.locator('tbody tr').count()).toBe(100);
    await expect(page.locator('.preview.table > p.muted').innerText()).resolves.toContain(`${BIG_PARQUET_ROWS.toLocaleString('en-US')} rows in 20 row groups, 3 columns`);
    await expect(table.locator('tbody tr').nth(99).locator('td').first().innerText()).resolves.toBe('100');
    await page.getByRole('button', { name: 'Read 100 more rows' }).click();
    await poll(() => table.locator('tbody tr').count()).toBe(200);
    const size = Number((await (await fetch(`${gw.url}${url}`, { method: 'HEAD' })).headers.get('content-length')) ?? 0);
    const got = await bytesFetched(watch, url);
    console.log(`Parquet preview of ${size} bytes in 20 row groups, 200 rows shown: ${got.requests} requests, ${got.bytes} bytes`);
    expect(size).toBeGreaterThan(2 * 1024 * 1024);
    // The footer (at most 64 KiB) and the column chunks of the first row group: about a twentieth of the file.
    expect(got.bytes).toBeLessThan(size / 8);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it('a single-file archive: its content previewed from the archive view', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/single`);
    await page.getByRole('link', { name: 'preview its content' }).click();
    await page.waitForURL('**/archives/scratch/single/disk');
    await poll(() => page.locator('pre.hex-body').innerText()).toMatch(/^00000000 {2}/);
    await expect(page.locator('.file .facts').innerText()).resolves.toContain('200,000 bytes');
    const got = await bytesFetched(watch, '/v1/archives/scratch/single/disk');
    expect(got.bytes).toBeLessThanOrEqual(64 * 1024);
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

  it('walks three directories down to a file with the keyboard alone, focus always visible', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/datasets/weather-v2`);
    await page.locator('td.name a', { hasText: 'data/' }).waitFor();
    /** What has the focus: its text (or its label's), whether it shows a focus ring. */
    const focused = () =>
      page.evaluate(() => {
        const e = document.activeElement as HTMLElement;
        const s = getComputedStyle(e);
        const label = (e as HTMLInputElement).labels?.[0]?.innerText ?? '';
        return { text: (e.innerText || label || e.getAttribute('aria-label') || '').trim(), ring: e.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
      });
    const seen: string[] = [];
    /** Tab (or Shift+Tab) until the focus is on what matches; every stop on the way must show its focus. */
    const tabTo = async (re: RegExp, key = 'Tab') => {
      for (let i = 0; i < 120; i++) {
        await page.keyboard.press(key);
        const f = await focused();
        seen.push(f.text);
        expect(f.ring, `no visible focus on "${f.text}"`).toBe(true);
        if (re.test(f.text)) return;
      }
      throw new Error(`no focusable element matching ${re}`);
    };
    await tabTo(/^data\/$/);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/tree/data/');
    await page.locator('td.name a', { hasText: 'table.csv' }).waitFor();
    // The name filter and a sort button, by keyboard.
    await tabTo(/^Filter names/);
    await page.keyboard.type('20');
    await poll(() => page.locator('table.files tbody tr').count()).toBe(2); // '..' and 2026/
    await tabTo(/^Size/);
    await page.keyboard.press('Enter');
    await expect(page.locator('th', { hasText: 'Size' }).getAttribute('aria-sort')).resolves.toBe('ascending');
    await tabTo(/^2026\/$/);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/tree/data/2026/');
    await page.locator('td.name a', { hasText: 'jan/' }).waitFor();
    await tabTo(/^jan\/$/);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/tree/data/2026/jan/');
    await page.locator('td.name a', { hasText: 'notes.txt' }).waitFor();
    await tabTo(/notes\.txt$/);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/files/data/2026/jan/notes.txt');
    await poll(() => page.locator('pre.text-body').innerText()).toContain('Three levels down');
    // The preview itself takes the focus (it scrolls with the arrow keys), and so do the copy fields and the download.
    await tabTo(/^Raw URL/);
    await tabTo(/^Download$/);
    await tabTo(/Three levels down/);
    // Up through the breadcrumbs (before the content: Shift+Tab), then back. Alt+Left is the browser's
    // own key, which headless Chromium does not take from synthetic key events: history.back is what it does.
    await tabTo(/^2026$/, 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/tree/data/2026/');
    await page.locator('td.name a', { hasText: 'jan/' }).waitFor();
    await page.goBack();
    await page.waitForURL('**/files/data/2026/jan/notes.txt');
    await poll(() => page.locator('pre.text-body').innerText()).toContain('Three levels down');
    expect(seen.length).toBeGreaterThan(5);
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it("downloads at most 250 KiB of the page's own assets across every view (libraries included)", async () => {
    // A fresh browser: nothing cached, every asset counted once, as the browser receives it.
    const fresh = await launchBrowser();
    try {
      const page = await fresh.context.newPage();
      const pending: Array<Promise<void>> = [];
      const assets = new Map<string, { wire: number; decoded: number; encoding: string }>();
      page.on('response', (r) => {
        const p = new URL(r.url()).pathname;
        if (!p.startsWith('/ui/')) return;
        pending.push(
          (async () => {
            const h = await r.allHeaders();
            const decoded = (await r.body()).byteLength;
            assets.set(p, { wire: Number(h['content-length'] ?? decoded), decoded, encoding: h['content-encoding'] ?? 'identity' });
          })(),
        );
      });
      const totals = async () => {
        await page.waitForLoadState('networkidle');
        await Promise.all(pending);
        const all = [...assets];
        const sum = (xs: typeof all, k: 'wire' | 'decoded') => xs.reduce((n, [, a]) => n + a[k], 0);
        const vendor = all.filter(([p]) => p.includes('/vendor/'));
        return { count: all.length, wire: sum(all, 'wire'), decoded: sum(all, 'decoded'), vendorDecoded: sum(vendor, 'decoded') };
      };
      const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      const base = `${gw.url}/archives/datasets/weather-v2`;
      await page.goto(`${gw.url}/`);
      await page.getByRole('link', { name: 'datasets/weather-v2' }).waitFor();
      await page.goto(base);
      await page.getByRole('heading', { name: 'Bytes' }).waitFor();
      await page.goto(`${base}/tree/data/`);
      await page.locator('td.name a', { hasText: 'table.csv' }).waitFor();
      const views: Array<[string, string]> = [
        ['data/2026/jan/notes.txt', 'pre.text-body'],
        ['data/table.csv', 'table.data tbody tr'],
        ['data/manifest.json', 'pre.text-body'],
        ['images/gradient.png', '.preview.image img'],
        ['media/tone.wav', 'audio'],
        ['bin/random.bin', 'pre.hex-body'],
      ];
      for (const [file, ready] of views) {
        await page.goto(`${base}/files/${file}`);
        await page.locator(ready).first().waitFor();
      }
      await page.goto(`${gw.url}/diff?to=datasets%2Fweather-v2`);
      await page.locator('.summary').waitFor();
      const withoutParquet = await totals();
      // hyparquet is imported only when a Parquet file is opened.
      expect([...assets.keys()].some((p) => p.includes('/vendor/hyparquet/'))).toBe(false);
      await page.goto(`${base}/files/data/table.parquet`);
      await page.locator('table.data tbody tr').first().waitFor();
      const all = await totals();
      console.log(
        `the browser downloaded ${all.count} page assets over every view: ${kib(all.wire)} on the wire (gzip), ${kib(all.decoded)} decoded, of which vendored libraries ${kib(all.vendorDecoded)}; ` +
          `every view but Parquet: ${kib(withoutParquet.wire)} gzip, ${kib(withoutParquet.decoded)} decoded`,
      );
      expect([...assets.values()].every((a) => a.encoding === 'gzip')).toBe(true);
      expect([...assets.keys()].some((p) => p.includes('/vendor/hyparquet/'))).toBe(true);
      // The bar holds decoded, not only for what gzip sends: hyparquet is served compacted (routes/ui.ts,
      // compactVendorJs: ~140 KiB instead of the 199 KiB it is published as, mostly JSDoc).
      expect(all.decoded).toBeLessThanOrEqual(250 * 1024);
      expect(all.wire).toBeLessThan(all.decoded);
      expect(withoutParquet.decoded).toBeLessThan(all.decoded);
    } finally {
      await fresh.close();
    }
  });

  it('an encrypted archive without a key on the gateway shows only what the API shows', async () => {
    const { page, watch } = await openPage(`${gw.url}/`);
    const row = page.locator('tr', { has: page.getByRole('link', { name: 'secret', exact: true }) });
    await poll(() => row.innerText()).toMatch(/secret\s+[\d.]+ KiB[\s\S]*encrypted, no key/);
    await row.getByRole('link', { name: 'secret', exact: true }).click();
    await poll(() => page.locator('[role=alert]').innerText()).toMatch(/KEY_REQUIRED[\s\S]*no key for it/);
    await expect(page.locator('.facts, .tree, .bar').count()).resolves.toBe(0);
    // Deep links into it show the same refusal and nothing of its tree or contents.
    for (const [url, what] of [
      ['/archives/secret/tree/data/', 'table.files tbody tr'],
      ['/archives/secret/files/data/table.csv', '.preview, .file'],
    ]) {
      await page.goto(`${gw.url}${url}`);
      await poll(() => page.locator('[role=alert]').innerText()).toMatch(/KEY_REQUIRED/);
      await expect(page.locator(what).count()).resolves.toBe(0);
    }
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  it("never runs an archive's HTML or SVG as active content of the page's origin", async () => {
    const base = '/v1/archives/scratch/more/files/web';
    const { page, watch } = await openPage(`${gw.url}/archives/scratch/more/files/web/active.html`);
    // Previewed as text: the markup shows, nothing of it runs in the page.
    await poll(() => page.locator('pre.text-body').textContent()).toBe(ACTIVE_HTML);
    await expect(page.evaluate(() => (window as unknown as { hexzActive?: boolean }).hexzActive)).resolves.toBeUndefined();
    // An SVG is an <img> source: scripts never run in images.
    await page.goto(`${gw.url}/archives/scratch/more/files/web/active.svg`);
    const img = page.locator('.preview.image img');
    await img.waitFor();
    await poll(() => img.evaluate((e: HTMLImageElement) => e.complete && e.naturalWidth)).toBe(40);
    await expect(page.evaluate(() => (window as unknown as { hexzActive?: boolean }).hexzActive)).resolves.toBeUndefined();
    expect(watch.errors).toEqual([]);
    // Opened by its raw URL (the Raw URL field, a link), the file answers with the `sandbox` CSP: an
    // opaque origin where its scripts do not run (the browser says so on the console), the page's
    // sessionStorage out of reach.
    for (const file of ['active.html', 'active.svg']) {
      const res = await page.goto(`${gw.url}${base}/${file}`);
      expect(res?.headers()['content-security-policy']).toBe('sandbox');
      expect(res?.headers()['x-content-type-options']).toBe('nosniff');
      await expect(page.evaluate(() => (window as unknown as { hexzActive?: boolean }).hexzActive)).resolves.toBeUndefined();
      await expect(page.evaluate(() => origin)).resolves.toBe('null');
    }
    await expect(page.evaluate(() => document.title)).resolves.not.toBe('ran');
    expect(watch.errors.filter((e) => !/Blocked script execution .* sandboxed/.test(e))).toEqual([]);
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

  it('copies the raw URL and the curl command, and downloads the file', async () => {
    const { page, watch } = await openPage(`${gw.url}/archives/datasets/weather-v2/files/data/2026/jan/notes.txt`);
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
    await poll(() => page.locator('pre.text-body').innerText()).toContain('Three levels down');
    const raw = `${gw.url}/v1/archives/datasets/weather-v2/files/data/2026/jan/notes.txt`;
    await expect(page.getByLabel('Raw URL').inputValue()).resolves.toBe(raw);
    await page.locator('.copy', { has: page.getByLabel('Raw URL') }).getByRole('button', { name: 'Copy' }).click();
    await poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(raw);
    await page.locator('.copy', { has: page.getByLabel('curl') }).getByRole('button', { name: 'Copy' }).click();
    await poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(`curl -r 0-1023 '${raw}'`);
    // What was copied works as it is: the first KiB of the file.
    const first = await fetch(raw, { headers: { range: 'bytes=0-1023' } });
    expect(first.status).toBe(206);
    expect((await first.text()).startsWith('Three levels down')).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toBe('notes.txt');
    expect(await fs.readFile((await download.path())!, 'utf8')).toBe('Three levels down: hello from the page tests.\n'.repeat(20));
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
    // Kept for the session: a reload lists again without asking.
    await page.reload();
    await page.getByRole('link', { name: 'datasets/weather-v2' }).waitFor();
    await expect(page.getByRole('textbox', { name: 'Token' }).count()).resolves.toBe(0);
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
    // A download link is a navigation, which cannot carry the header: the service worker lends the token.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toBe('table.parquet');
    expect((await fs.readFile((await download.path())!)).subarray(0, 4).toString('latin1')).toBe('PAR1');
    const unauthorized = [];
    for (const r of watch.requests) if ((await r.response())?.status() === 401) unauthorized.push(r.url());
    // Only the first listing, before the token was given.
    expect(unauthorized).toEqual([`${authGw.url}/v1/archives?limit=100`]);
    expect(watch.errors).toEqual([]);
    await page.close();
  });
});
