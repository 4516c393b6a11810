/**
 * The liveness port (`--health-port`, src/gateway/health-server.ts): `/healthz` answers within a
 * probe's timeout while a thousand connections keep the gateway's own port busy (there, a new
 * connection waits in the accept queue until the load stops: see the module's comment), with one
 * thread and with worker threads; it answers nothing else; a bad value is refused naming the flag.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz } from '../helpers/cli.js';
import { spawnServe, stopAllServes } from '../helpers/serve.js';
import { makeTempDir } from '../helpers/tmp.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { MiB, packArchive } from './fixture.js';

/** The Helm chart's liveness probe timeout (helm/hexz/values.yaml probes.liveness.timeoutSeconds). */
const PROBE_TIMEOUT_MS = 2_000;

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-health-');
  root = path.join(tmp.dir, 'archives');
  const input = path.join(tmp.dir, 'in.bin');
  await (await import('node:fs/promises')).writeFile(input, randomBytesSeeded(4 * MiB, 77));
  await packArchive(input, root, 'big');
});
afterAll(async () => {
  await stopAllServes();
  await tmp?.cleanup();
});

function healthUrlOf(output: string): string {
  const m = /"healthUrl":"(http:\/\/[^"]+)"/.exec(output);
  if (!m) throw new Error(`no healthUrl in the log: ${output}`);
  return m[1];
}

/**
 * Run `probe` while wrk keeps a thousand connections busy on `url` (wrk: `make test` installs it; it
 * opens its connections at once, as a burst of real clients does, which fills the accept queue).
 */
async function underLoad<T>(url: string, probe: () => Promise<T>): Promise<T> {
  const load: ChildProcess = spawn('wrk', ['-c', '1000', '-t', '2', '-d', '60s', '-H', 'Range: bytes=0-65535', url], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => load.once('error', (err) => reject(new Error(`wrk could not run (apt-get install -y wrk): ${err.message}`))));
  try {
    await Promise.race([new Promise((r) => setTimeout(r, 1_500)), failed]);
    return await Promise.race([probe(), failed]);
  } finally {
    load.kill('SIGKILL');
  }
}

async function timedGet(url: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  return { status: r.status, body: await r.text(), ms: Date.now() - t0 };
}

describe.each([1, 2])('hexz serve --workers %i --health-port 0', (workers) => {
  it('answers /healthz within the probe timeout under a thousand busy connections', async () => {
    const gw = await spawnServe(['--storage', root, '--port', '0', '--workers', String(workers), '--health-port', '0']);
    const health = healthUrlOf(gw.output());
    const probes = await underLoad(`${gw.url}/v1/archives/big/disk`, async () => {
      const out = [];
      for (let i = 0; i < 5; i++) out.push(await timedGet(health));
      return out;
    });
    for (const p of probes) {
      expect(p.status).toBe(200);
      expect(JSON.parse(p.body)).toEqual({ status: 'ok' });
      expect(p.ms).toBeLessThan(PROBE_TIMEOUT_MS);
    }
    // Only /healthz: content lives on the gateway's port.
    const other = await fetch(health.replace('/healthz', '/v1/archives'));
    expect(other.status).toBe(404);
    expect((await fetch(health, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(health, { method: 'POST' })).status).toBe(405);
    gw.child.kill('SIGTERM');
    expect(await gw.exit).toBe(0);
  });
});

it('a health port equal to the gateway port is refused, naming --health-port', async () => {
  const r = await hexz(['serve', '--storage', root, '--port', '18999', '--health-port', '18999']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--health-port: must differ from port/);
});
