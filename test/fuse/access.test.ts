/**
 * What it takes to reach a mount, end to end with real mounts: an https:// archive mounted from a
 * real TLS server (its certificate trusted the documented way, NODE_EXTRA_CA_CERTS), `--allow-other`
 * letting another uid read the mount (and its absence keeping that uid out), and `hexz mount` on a
 * machine where a part of FUSE is missing — the device, the fusermount helper, the FUSE libraries
 * (libfuse3.so.3 and libfuse.so.2), the capability to mount — which must exit with FUSE_UNAVAILABLE saying what is missing and how to
 * install it, and leave no mount. The missing parts are made real for one child process only, in a
 * private mount namespace (see withoutFuse in ./mount-helper.ts); nothing on the machine changes.
 * Every access to a mount is made by child processes.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { CLI, hexz, run, type CliResult } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { makeTempDir } from '../helpers/tmp.js';
import {
  canUnshareMounts,
  FUSE_DEVICE_PRESENT,
  FUSE_REQUIRED,
  forceUnmount,
  isMounted,
  mountsAt,
  sha256Tree,
  startMount,
  withoutFuse,
  type MissingFusePart,
  type RunningMount,
} from './mount-helper.js';

const MiB = 1024 * 1024;
const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const NAMESPACES = await canUnshareMounts();
/** Exit code of FUSE_UNAVAILABLE (src/errors.ts). */
const FUSE_UNAVAILABLE_EXIT = ERROR_TABLE.FUSE_UNAVAILABLE.exit;

let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let src: string;
let archive: string;
let certFile: string;
let server: TestHttpServer | undefined;
let url: string;
const mountpoints: string[] = [];
const mounts: RunningMount[] = [];

/** A fresh directory to mount on, reachable by other users (for --allow-other). */
async function mountpoint(name: string): Promise<string> {
  const mp = path.join(tmp.dir, name);
  await fs.mkdir(mp, { mode: 0o755 });
  mountpoints.push(mp);
  return mp;
}

/** Run `cmd args…` as nobody (uid and gid 65534, no supplementary groups). */
function asNobody(cmd: string, args: string[]): Promise<CliResult> {
  return run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', cmd, ...args]);
}

/**
 * Run a `hexz mount` that is expected to fail at once; were it to mount after all, `timeout` ends it
 * with SIGTERM (a clean unmount) after 60 s and the test fails on the exit code instead of hanging.
 */
function runBounded(cmd: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  return run('timeout', ['-s', 'TERM', '60', cmd, ...args], { env });
}

/** Lines of our own mount table that a private namespace of withoutFuse could have leaked into. */
async function leakedScratchMounts(): Promise<string[]> {
  return (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes('hexz-test-no-fuse'));
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-fuse-access-');
  // nobody must be able to walk to the mountpoints (mkdtemp makes the directory 0700).
  await fs.chmod(tmp.dir, 0o755);
  src = path.join(tmp.dir, 'src');
  await writeTree(src, {
    'data/weights.bin': randomBytesSeeded(3 * MiB + 12_345, 41),
    'README.md': textBytes(80_000, 42),
    'nested/deeper/note.txt': 'hello over TLS\n',
    'empty.txt': '',
  });
  archive = path.join(tmp.dir, 'access.hxz');
  await pack(src, archive, { threads: 1 });

  // A self-signed certificate for 127.0.0.1 (as in test/cli/https.test.ts), trusted by the CLI only
  // through NODE_EXTRA_CA_CERTS.
  certFile = path.join(tmp.dir, 'cert.pem');
  const keyFile = path.join(tmp.dir, 'key.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=hexz test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile,
  ]);
  server = await startHttpServer({ tls: { key: await fs.readFile(keyFile), cert: await fs.readFile(certFile) } });
  url = await server.put('ds/v1.hxz', await fs.readFile(archive));
  expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ds\/v1\.hxz$/);
}, 60_000);

afterAll(async () => {
  await Promise.all(mounts.map((m) => m.stop()));
  for (const mp of mountpoints) await forceUnmount(mp);
  await server?.stop();
  await tmp?.cleanup();
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount of an https:// archive', () => {
  it('mounts an archive served over TLS: every file read through the mount has the sha256 of the original', async () => {
    const mp = await mountpoint('https');
    server!.requests.length = 0;
    const m = await startMount(url, mp, { env: { NODE_EXTRA_CA_CERTS: certFile } });
    mounts.push(m);
    expect(m.stderr()).toContain(`hexz: mounted ${url} at ${mp} (read-only)`);
    expect((await mountsAt(mp)).join('\n')).toContain(`hexz:${url} ${mp} fuse.hexz ro,`);

    const expected = await sha256Tree(src);
    expect(Object.keys(expected).sort()).toEqual(['README.md', 'data/weights.bin', 'empty.txt', 'nested/deeper/note.txt']);
    expect(await sha256Tree(mp)).toEqual(expected);
    // The bytes really came from the TLS server, in ranged requests (the archive is never fetched whole).
    const gets = server!.requests.filter((r) => r.method === 'GET' && r.path === '/ds/v1.hxz');
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((r) => r.range !== undefined)).toBe(true);
    expect(m.stderr()).not.toContain('hexz: error');

    const exit = await m.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(await isMounted(mp)).toBe(false);
  });

  it('an untrusted certificate: no mount, a clear STORAGE_IO (exit 10) that says how to trust it', async () => {
    const mp = await mountpoint('https-untrusted');
    const r = await hexz(['mount', url, mp], { env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code, r.stderr).toBe(ERROR_TABLE.STORAGE_IO.exit);
    expect(r.stderr).toMatch(/self-signed certificate/);
    expect(r.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(await isMounted(mp)).toBe(false);
  });
});

describe.skipIf(!FUSE_DEVICE_PRESENT || !ROOT)('hexz mount --allow-other', () => {
  it('with --allow-other another uid reads the mount; without it the kernel keeps that uid out', async () => {
    const open = await mountpoint('allow-other');
    const closed = await mountpoint('owner-only');
    const [mo, mc] = await Promise.all([startMount(archive, open, { args: ['--allow-other'] }), startMount(archive, closed)]);
    mounts.push(mo, mc);
    expect((await mountsAt(open)).join('\n')).toMatch(/\ballow_other\b/);
    expect((await mountsAt(closed)).join('\n')).not.toMatch(/\ballow_other\b/);

    // nobody reads the --allow-other mount: listing, and every file's content.
    const ls = await asNobody('ls', ['-A', open]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['README.md', 'data', 'empty.txt', 'nested']);
    const sums = await asNobody('sha256sum', [path.join(open, 'data/weights.bin'), path.join(open, 'nested/deeper/note.txt')]);
    expect(sums.code, sums.stderr).toBe(0);
    const want = await sha256Tree(src);
    expect(sums.stdout.toString()).toBe(`${want['data/weights.bin']}  ${open}/data/weights.bin\n${want['nested/deeper/note.txt']}  ${open}/nested/deeper/note.txt\n`);

    // Without it, nobody cannot even look at the mount, while its owner (root, this test) can.
    const denied = await asNobody('cat', [path.join(closed, 'nested/deeper/note.txt')]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Permission denied/);
    const deniedLs = await asNobody('ls', [closed]);
    expect(deniedLs.code).not.toBe(0);
    expect(deniedLs.stderr).toMatch(/Permission denied/);
    const owner = await run('cat', [path.join(closed, 'nested/deeper/note.txt')]);
    expect(owner.stdout.toString()).toBe('hello over TLS\n');

    const [eo, ec] = await Promise.all([mo.stop('SIGTERM'), mc.stop('SIGTERM')]);
    expect([eo.code, ec.code]).toEqual([0, 0]);
    expect(await isMounted(open)).toBe(false);
    expect(await isMounted(closed)).toBe(false);
  });

  it('without CAP_SYS_ADMIN (a container without --cap-add SYS_ADMIN) the refused mount is FUSE_UNAVAILABLE and leaves nothing', async () => {
    const mp = await mountpoint('no-cap');
    const readyFile = path.join(tmp.dir, '.no-cap.ready');
    // Dropped from the bounding set, the capability cannot come back, not even through setuid fusermount3.
    const r = await runBounded('setpriv', ['--bounding-set=-sys_admin', '--inh-caps=-sys_admin', process.execPath, CLI, 'mount', archive, mp, '--ready-file', readyFile], {
      HEXZ_PROGRESS: '0',
    });
    expect(r.code, r.stderr).toBe(FUSE_UNAVAILABLE_EXIT);
    expect(r.stderr).toContain(`FUSE is not available: mounting ${mp} failed`);
    expect(r.stderr).toContain('can never hold CAP_SYS_ADMIN');
    expect(r.stderr).toContain('--cap-add SYS_ADMIN');
    expect(await isMounted(mp)).toBe(false);
    expect(existsSync(readyFile)).toBe(false);
  });
});

// Each case removes exactly one part of an otherwise working FUSE, so it needs FUSE here and a
// private mount namespace (root). CI (HEXZ_TEST_REQUIRE_FUSE=1) runs them whatever this machine says.
describe.skipIf(!(FUSE_DEVICE_PRESENT && NAMESPACES) && !FUSE_REQUIRED)('hexz mount where FUSE is missing', () => {
  const cases: { missing: MissingFusePart; says: string; also?: string }[] = [
    { missing: 'device', says: '/dev/fuse does not exist (no FUSE kernel module, or a container started without the device)' },
    { missing: 'helper', says: 'no fusermount helper in /bin, /usr/bin' },
    // Both libraries: libfuse3 (the default binding) and libfuse2 (fuse-native, the fallback).
    { missing: 'library', says: 'neither FUSE binding loads: the FUSE 3 library (libfuse3.so.3) is missing', also: 'and the FUSE 2 library (libfuse.so.2) is missing' },
  ];

  it.each(cases)('no $missing: exit FUSE_UNAVAILABLE (24) saying what is missing and how to install it, before any request, and no mount', async ({ missing, says, also }) => {
    const mp = await mountpoint(`no-${missing}`);
    const readyFile = path.join(tmp.dir, `.no-${missing}.ready`);
    const before = server!.requests.length;
    // An https:// archive: the check must come before the archive is opened (no request spent on it).
    const cmd = await withoutFuse(missing, process.execPath, [CLI, 'mount', url, mp, '--ready-file', readyFile]);
    const r = await runBounded(cmd.cmd, cmd.args, { HEXZ_PROGRESS: '0', NODE_EXTRA_CA_CERTS: certFile });

    expect(r.code, r.stderr).toBe(FUSE_UNAVAILABLE_EXIT);
    expect(r.stderr).toContain(`hexz: error: FUSE is not available: ${says}`);
    if (also) expect(r.stderr).toContain(also);
    expect(r.stderr).toContain('apt-get install -y fuse3 libfuse2');
    expect(r.stderr).toContain('--device /dev/fuse --cap-add SYS_ADMIN');
    expect(r.stderr.trim().split('\n')).toHaveLength(1); // one clear line, no stack trace
    expect(server!.requests.length).toBe(before);
    expect(await isMounted(mp)).toBe(false);
    expect(existsSync(readyFile)).toBe(false);
    expect(await leakedScratchMounts()).toEqual([]);
  });
});
