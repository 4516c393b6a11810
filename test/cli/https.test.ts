/**
 * Real https:// archives: a TLS server with a self-signed certificate made for this test (openssl),
 * and the CLI trusting it the documented way (docs/operations.md, "HTTP archives"): the certificate in
 * NODE_EXTRA_CA_CERTS. Without it, the error is a clear STORAGE_IO (exit 10) that says how to fix it.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let https: TestHttpServer;
let certFile: string;
let input: string;
let url: string;
let deltaUrl: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-https-');
  certFile = path.join(tmp.dir, 'cert.pem');
  const keyFile = path.join(tmp.dir, 'key.pem');
  // A self-signed certificate for 127.0.0.1 (node:crypto cannot issue certificates; openssl can).
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=hexz test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile,
  ]);
  https = await startHttpServer({ tls: { key: await fs.readFile(keyFile), cert: await fs.readFile(certFile) } });
  expect(https.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);

  input = path.join(tmp.dir, 'v1');
  await writeTree(input, { 'data/weights.bin': randomBytesSeeded(5 * MiB, 3), 'README.md': textBytes(50_000, 4) });
  const v2 = path.join(tmp.dir, 'v2');
  await writeTree(v2, { 'data/weights.bin': randomBytesSeeded(5 * MiB, 3), 'README.md': textBytes(60_000, 5) });
  const a1 = path.join(tmp.dir, 'v1.hxz');
  const a2 = path.join(tmp.dir, 'v2.hxz');
  expect((await hexz(['pack', input, a1])).code).toBe(0);
  expect((await hexz(['pack', v2, a2, '--base', a1])).code).toBe(0);
  url = await https.put('ds/v1.hxz', await fs.readFile(a1));
  deltaUrl = await https.put('ds/v2.hxz', await fs.readFile(a2));
}, 60_000);

afterAll(async () => {
  await https?.stop();
  await tmp?.cleanup();
});

const trusted = () => ({ env: { NODE_EXTRA_CA_CERTS: certFile } });

describe('https:// archives', () => {
  it('ls, cat, info, verify and extract work once the certificate is trusted through NODE_EXTRA_CA_CERTS', async () => {
    const ls = await hexz(['ls', '-r', url], trusted());
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.toString().trim().split('\n')).toEqual(['README.md', 'data/', 'data/weights.bin']);
    const cat = await hexz(['cat', url, 'data/weights.bin', '--offset', String(MiB), '--length', '100000'], trusted());
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout.equals(randomBytesSeeded(5 * MiB, 3).subarray(MiB, MiB + 100_000))).toBe(true);
    expect((await hexzJson(['info', url], trusted())).json).toMatchObject({ url, fileCount: 3 });
    expect((await hexz(['verify', url], trusted())).code).toBe(0);
    // A thin archive finds its base next to it, over the same TLS connection pool.
    const dest = path.join(tmp.dir, 'from-https');
    const x = await hexz(['extract', deltaUrl, dest], trusted());
    expect(x.code, x.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(path.join(tmp.dir, 'v2')));
    // Every request really went over TLS to this server.
    expect(https.requests.length).toBeGreaterThan(0);
  });

  it('an untrusted certificate fails clearly (STORAGE_IO, exit 10, no retries) and says how to trust it', async () => {
    const before = https.requests.length;
    const r = await hexz(['ls', url], { env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/self-signed certificate/);
    expect(r.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(https.requests.length).toBe(before); // the handshake failed: no request reached the server
  });
});
