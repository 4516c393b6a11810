/**
 * Mounting archives that are not a plain local file: a thin delta whose chunks partly live in its
 * base, and archives on a real S3-compatible server (s3rver in a child process), thin ones included.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { hexz } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, sha256Tree, startMount, type RunningMount } from './mount-helper.js';

/** v1 of a small dataset and v2 with an edited file, a new one and a removed one. */
async function writeVersions(root: string): Promise<{ v1: string; v2: string }> {
  const v1 = path.join(root, 'v1');
  const v2 = path.join(root, 'v2');
  const shared = randomBytesSeeded(3 * 1024 * 1024, 21);
  await writeTree(v1, { 'data/shared.bin': shared, 'data/old.txt': textBytes(50_000, 5), 'notes.txt': 'version 1\n' });
  const edited = Buffer.concat([shared.subarray(0, 1_000_000), Buffer.from('an insertion in the middle'), shared.subarray(1_000_000)]);
  await writeTree(v2, { 'data/shared.bin': edited, 'data/new.bin': randomBytesSeeded(500_000, 22), 'notes.txt': 'version 2\n' });
  return { v1, v2 };
}

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount: thin and remote archives', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let versions: { v1: string; v2: string };
  const mounts: RunningMount[] = [];
  const mountpoints: string[] = [];
  let s3: S3TestServer | undefined;

  async function mountpoint(name: string): Promise<string> {
    const mp = path.join(tmp.dir, name);
    await fs.mkdir(mp);
    mountpoints.push(mp);
    return mp;
  }

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-remote-');
    versions = await writeVersions(tmp.dir);
  });

  afterAll(async () => {
    await Promise.all(mounts.map((m) => m.stop()));
    for (const mp of mountpoints) await forceUnmount(mp);
    await s3?.stop();
    await tmp?.cleanup();
  });

  it('mounts a thin archive: chunks come from the delta and from its base', async () => {
    const v1 = path.join(tmp.dir, 'v1.hxz');
    const v2 = path.join(tmp.dir, 'v2.hxz');
    await pack(versions.v1, v1, { threads: 2 });
    const summary = await pack(versions.v2, v2, { threads: 2, bases: [v1] });
    expect(summary.baseBytes).toBeGreaterThan(2 * 1024 * 1024);
    const a = await openArchive(v2);
    expect(a.root.bases.length).toBe(1);
    await a.close();

    const mp = await mountpoint('thin');
    const m = await startMount(v2, mp);
    mounts.push(m);
    expect(await sha256Tree(mp)).toEqual(await sha256Tree(versions.v2));
    expect(m.stderr()).not.toContain('hexz: error');
  });

  it('mounts an encrypted archive with --key-file, and refuses to mount it without the key', async () => {
    const keyFile = path.join(tmp.dir, 'mount.key');
    await fs.writeFile(keyFile, randomBytesSeeded(32, 77), { mode: 0o600 });
    const enc = path.join(tmp.dir, 'enc.hxz');
    const packed = await hexz(['--key-file', keyFile, 'pack', '--encrypt', versions.v1, enc]);
    expect(packed.code, packed.stderr).toBe(0);
    const noKeyMp = await mountpoint('enc-nokey');
    const refused = await hexz(['mount', enc, noKeyMp]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/encrypted: give --key-file/);
    const mp = await mountpoint('enc');
    const m = await startMount(enc, mp, { globalArgs: ['--key-file', keyFile] });
    mounts.push(m);
    expect(await sha256Tree(mp)).toEqual(await sha256Tree(versions.v1));
  });

  it('mounts s3:// archives from an S3-compatible server, a thin delta included', async () => {
    s3 = await startS3Server({ buckets: ['hexz'] });
    const env = s3.env;
    const up1 = await hexz(['pack', versions.v1, 's3://hexz/ds/v1.hxz'], { env });
    expect(up1.code, up1.stderr).toBe(0);
    const up2 = await hexz(['pack', versions.v2, 's3://hexz/ds/v2.hxz', '--base', 's3://hexz/ds/v1.hxz'], { env });
    expect(up2.code, up2.stderr).toBe(0);

    const mp1 = await mountpoint('s3-v1');
    const mp2 = await mountpoint('s3-v2');
    const [m1, m2] = await Promise.all([startMount('s3://hexz/ds/v1.hxz', mp1, { env }), startMount('s3://hexz/ds/v2.hxz', mp2, { env })]);
    mounts.push(m1, m2);
    expect(m2.stderr()).toContain(`hexz: mounted s3://hexz/ds/v2.hxz at ${mp2} (read-only)`);
    const [t1, t2] = await Promise.all([sha256Tree(mp1), sha256Tree(mp2)]);
    expect(t1).toEqual(await sha256Tree(versions.v1));
    expect(t2).toEqual(await sha256Tree(versions.v2));
    const mounts1 = await fs.readFile('/proc/self/mounts', 'utf8');
    expect(mounts1).toContain(`hexz:s3://hexz/ds/v2.hxz ${mp2} fuse.hexz ro,`);
  });
});
