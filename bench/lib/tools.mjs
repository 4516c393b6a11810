// The tools under test: hexz (this repo's built CLI) and the peers, with their versions, and small
// helpers to run each one the way its users would.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probe, runProcess, runTimed, treeBytes, which } from './measure.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HEXZ_CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
export const NODE = process.execPath;

/** Availability and version of every tool. */
export function detectTools() {
  const t = {};
  const add = (name, cmd, versionArgs, parse = (s) => s.split('\n')[0], stderr = false) => {
    const p = which(cmd);
    t[name] = p ? { available: true, path: p, version: parse(probe(p, versionArgs, { stderr })) } : { available: false };
  };
  t.hexz = existsSync(HEXZ_CLI) ? { available: true, path: HEXZ_CLI, version: probe(NODE, [HEXZ_CLI, '--version']) } : { available: false, note: 'dist/ not built: run `make build`' };
  add('mksquashfs', 'mksquashfs', ['-version'], (s) => (s.match(/version ([\d.]+)/) || [])[1] ?? '');
  add('unsquashfs', 'unsquashfs', ['-version'], (s) => (s.match(/version ([\d.]+)/) || [])[1] ?? '');
  add('squashfuse', 'squashfuse', ['--version'], (s) => (s.match(/squashfuse ([\d.]+)/) || [])[1] ?? '', true);
  add('casync', 'casync', ['--version'], (s) => `v${s.split('\n')[0].replace(/^casync\s*/, '')}`);
  add('restic', 'restic', ['version'], (s) => (s.match(/restic ([\d.]+)/) || [])[1] ?? '');
  add('zstd', 'zstd', ['--version'], (s) => (s.match(/v([\d.]+)/) || [])[1] ?? '');
  add('lz4', 'lz4', ['--version'], (s) => (s.match(/v([\d.]+)/) || [])[1] ?? '', true);
  add('tar', 'tar', ['--version'], (s) => (s.match(/([\d.]+)/) || [])[1] ?? '');
  add('nginx', 'nginx', ['-v'], (s) => (s.match(/nginx\/([\d.]+)/) || [])[1] ?? '', true);
  if (!t.nginx.available && existsSync('/usr/sbin/nginx')) t.nginx = { available: true, path: '/usr/sbin/nginx', version: (probe('/usr/sbin/nginx', ['-v'], { stderr: true }).match(/nginx\/([\d.]+)/) || [])[1] ?? '' };
  add('wrk', 'wrk', ['--version'], (s) => (s.match(/wrk ([^\s]+)/) || [])[1] ?? '', true);
  add('fio', 'fio', ['--version'], (s) => s.replace(/^fio-/, ''));
  add('time', '/usr/bin/time', ['--version'], (s) => s, true);
  t.fuse = { available: existsSync('/dev/fuse') && (which('fusermount3') !== null || which('fusermount') !== null), version: existsSync('/dev/fuse') ? '/dev/fuse' : '' };
  return t;
}

/** `hexz ARGS` (the built CLI) under /usr/bin/time. */
export function hexz(args, opts = {}) {
  return runTimed(NODE, [HEXZ_CLI, ...args], { ...opts, env: { HEXZ_PROGRESS: '0', ...(opts.env ?? {}) } });
}

/** Pack with hexz; returns timing plus the summary from --json. */
export async function hexzPack(input, output, extra = [], opts = {}) {
  await fs.rm(output, { force: true });
  const r = await hexz(['--json', ...(opts.global ?? []), 'pack', '--force', ...extra, input, output], { stdout: 'capture', ...opts });
  let summary = null;
  try {
    summary = JSON.parse(r.stdout);
  } catch {
    throw new Error(`hexz pack printed no JSON summary: ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 400)}`);
  }
  return { ...r, summary, archiveBytes: (await fs.stat(output)).size };
}

export const RESTIC_ENV = { RESTIC_PASSWORD: 'hexz-bench', RESTIC_PROGRESS_FPS: '0' };

/** A fresh restic repository (repository format 2: compressed). Not timed. */
export async function resticInit(repo, cacheDir) {
  await fs.rm(repo, { recursive: true, force: true });
  await runProcess('restic', ['init', '--repo', repo, '--repository-version', '2', '--cache-dir', cacheDir], { env: RESTIC_ENV });
}

/** Bytes of every chunk file in a casync store (apparent sizes). */
export const storeBytes = (dir) => treeBytes(dir);

/** Mounted at `dir`? (/proc/self/mountinfo) */
export async function isMounted(dir) {
  const want = path.resolve(dir);
  try {
    const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
    return info.split('\n').some((l) => l.split(' ')[4] === want);
  } catch {
    return false;
  }
}

/** Unmount a FUSE mount, lazily if busy; never throws. */
export async function fuseUnmount(dir) {
  if (!(await isMounted(dir))) return;
  for (const cmd of [['fusermount3', ['-u', dir]], ['fusermount', ['-u', dir]], ['umount', [dir]], ['fusermount3', ['-uz', dir]], ['fusermount', ['-uz', dir]], ['umount', ['-l', dir]]]) {
    if (!which(cmd[0])) continue;
    await runProcess(cmd[0], cmd[1], { allowFail: true }).catch(() => {});
    if (!(await isMounted(dir))) return;
  }
}
