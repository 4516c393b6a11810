/**
 * `hexz mount --trusted-keys` on real FUSE mounts: an archive (or a base) not signed by a trusted key
 * is refused before anything is mounted, a trusted one mounts, and a mounted remote archive replaced
 * by a new version is reopened only when that version is signed by a trusted key too. Every access to
 * a mount is made by child processes (the HTTP server runs in this process).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSigningKeyFile, writeSigningKeyPair } from '@hexz/src/crypto/signing-keys.js';
import type { SigningKey } from '@hexz/src/crypto/signatures.js';
import { pack } from '@hexz/src/packer/pack.js';
import { hexz, run } from '../helpers/cli.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, isMounted, startMount, waitFor, type RunningMount } from './mount-helper.js';

const MiB = 1024 * 1024;
/** Files each version has that no read touched yet (each attempt to notice a replacement reads one). */
const COLD_FILES = 6;

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount --trusted-keys', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let server: TestHttpServer;
  let ci: SigningKey;
  let rogue: SigningKey;
  let ciPub: string;
  const mounts: RunningMount[] = [];
  const mountpoints: string[] = [];
  const at = (name: string) => path.join(tmp.dir, name);

  async function mountpoint(name: string): Promise<string> {
    const mp = at(name);
    await fs.mkdir(mp);
    mountpoints.push(mp);
    return mp;
  }

  let seed = 100;
  /**
   * Pack a version of the dataset; `marker` names a file only that version has. Its `cold-K.bin` files
   * are unlike any other version's, so a first read of one must go to storage (where a replaced
   * object is noticed) instead of being served from the content-addressed cache.
   */
  async function version(name: string, marker: string, opts: Parameters<typeof pack>[2] = {}): Promise<Buffer> {
    const dir = at(`src-${name}`);
    const cold: Record<string, Buffer> = {};
    for (let k = 0; k < COLD_FILES; k++) cold[`cold-${k}.bin`] = randomBytesSeeded(MiB, seed++);
    await writeTree(dir, { 'same.txt': 'unchanged\n', [marker]: `${marker}\n`, ...cold });
    await pack(dir, at(`${name}.hxz`), { threads: 1, overwrite: true, ...opts });
    return fs.readFile(at(`${name}.hxz`));
  }

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-signed-');
    ciPub = (await writeSigningKeyPair(at('ci'))).publicKeyFile;
    await writeSigningKeyPair(at('rogue'));
    ci = await readSigningKeyFile(at('ci.key'));
    rogue = await readSigningKeyFile(at('rogue.key'));
    server = await startHttpServer();
  });

  afterAll(async () => {
    await Promise.all(mounts.map((m) => m.stop()));
    for (const mp of mountpoints) await forceUnmount(mp);
    await server?.stop();
    await tmp?.cleanup();
  });

  it('refuses an unsigned archive, one signed by an unknown key, and a trusted delta of an untrusted base, before mounting', async () => {
    await version('plain', 'plain.txt');
    await version('by-rogue', 'rogue.txt', { signKey: rogue });
    await version('delta', 'delta.txt', { signKey: ci, bases: [at('by-rogue.hxz')] });
    const mp = await mountpoint('refused');
    for (const [file, code, message] of [
      ['plain.hxz', 27, /plain\.hxz is not signed; a signature by a trusted key is required/],
      ['by-rogue.hxz', 27, /by-rogue\.hxz is signed by key [0-9a-f]{64}, which is not a trusted key/],
      ['delta.hxz', 27, /base [0-9a-f-]{36} of .*delta\.hxz \(at .*by-rogue\.hxz\) is signed by key/],
    ] as const) {
      const r = await hexz(['mount', at(file), mp, '--trusted-keys', ciPub]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(await isMounted(mp)).toBe(false);
    }
  });

  it('mounts a trusted archive; a replacement is reopened only when it is signed by a trusted key', async () => {
    const v1 = await version('v1', 'v1.txt', { signKey: ci });
    const v2 = await version('v2', 'v2.txt', { signKey: ci });
    const v3 = await version('v3', 'v3.txt');
    const url = await server.put('ds.hxz', v1);
    const mp = await mountpoint('trusted');
    const m = await startMount(url, mp, { globalArgs: ['--trusted-keys', ciPub] });
    mounts.push(m);
    expect((await run('cat', [path.join(mp, 'v1.txt')])).stdout.toString()).toBe('v1.txt\n');

    // A trusted new version: the mount switches to it.
    let next = 0;
    const readCold = () => run('cat', [path.join(mp, `cold-${next++ % COLD_FILES}.bin`)]);
    await server.put('ds.hxz', v2);
    await waitFor(async () => (await readCold(), (await run('cat', [path.join(mp, 'v2.txt')])).code === 0), 'the signed v2 to be reopened');
    expect(m.stderr().match(/reopened it/g)).toHaveLength(1);

    // An unsigned new version: the reopen is refused and says why; nothing of v3 appears.
    await server.put('ds.hxz', v3);
    next = 0;
    await waitFor(async () => {
      await readCold();
      return /reopening it failed: .*ds\.hxz is not signed; a signature by a trusted key is required/.test(m.stderr());
    }, 'the unsigned v3 to be refused').catch((err: Error) => {
      throw new Error(`${err.message}; mount log: ${m.stderr()}`);
    });
    const v3file = await run('cat', [path.join(mp, 'v3.txt')]);
    expect(v3file.code).not.toBe(0);
    expect(m.stderr().match(/reopened it/g)).toHaveLength(1);
    expect((await m.stop('SIGTERM')).code).toBe(0);
  });
});
