#!/usr/bin/env node
// The ceiling of a FUSE binding, without the archive reader: a trivial filesystem whose one file
// (`/data`, 1 GiB by default) is a fixed 1 MiB pattern repeated, answered from memory, served through
// fuse-native (libfuse2, binding 2), the libfuse3 binding (fuse/fuse3.ts, binding 3), or the same
// filesystem in C on libfuse3 with no JavaScript at all (bench/fuse-ceiling.c, binding c), read with
// `dd bs=1M` and fio. Reports MiB/s per pass and the sizes of the read requests the kernel sent. Run
// as root (the mount raises the bdi's read_ahead_kb as `hexz mount` does):
//
//   node bench/fuse-ceiling.mjs [--size-mib 1024] [--passes 3] [--readahead-kb 128,1024] [--bindings 2,3,c]
//
// The page cache never answers: the file is opened without keep_cache, so every open drops its pages.
// Results are printed as a Markdown table (bench/README.md keeps the last one).
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const SIZE = Number(args['size-mib'] ?? 1024) * 1024 * 1024;
const PASSES = Number(args.passes ?? 3);
const READAHEADS = String(args['readahead-kb'] ?? '128,1024').split(',').map(Number);
const BINDINGS = String(args.bindings ?? '2,3,c').split(',');
const PATTERN = Buffer.alloc(1024 * 1024);
for (let i = 0, x = 12345; i < PATTERN.length; i++) PATTERN[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;

function sh(cmd, argv) {
  return new Promise((resolve) => execFile(cmd, argv, { maxBuffer: 1 << 24 }, (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })));
}

/** Copy the pattern for [pos, pos+len) of the file into buf. */
function fill(buf, len, pos) {
  let at = 0;
  while (at < len) {
    const off = (pos + at) % PATTERN.length;
    const n = Math.min(len - at, PATTERN.length - off);
    PATTERN.copy(buf, at, off, off + n);
    at += n;
  }
}

function trivialOps(Fuse, sizes) {
  const now = Date.now();
  const dir = { mode: 0o40755, size: 4096, nlink: 2, mtime: now, atime: now, ctime: now, blksize: 4096 };
  const file = { mode: 0o100444, size: SIZE, nlink: 1, mtime: now, atime: now, ctime: now, blksize: 1024 * 1024, blocks: SIZE / 512 };
  return {
    getattr: (p, cb) => (p === '/' ? cb(0, dir) : p === '/data' ? cb(0, file) : cb(Fuse.ENOENT)),
    readdir: (p, cb) => cb(0, ['.', '..', 'data'], [dir, dir, file]),
    open: (p, flags, cb) => cb(0, 1),
    release: (p, fd, cb) => cb(0),
    read(p, fd, buf, len, pos, cb) {
      sizes?.set(len, (sizes.get(len) ?? 0) + 1);
      const n = Math.max(0, Math.min(len, SIZE - pos));
      fill(buf, n, pos);
      cb(n);
    },
  };
}

const MOUNT_OPTIONS = ['ro', 'auto_unmount', 'default_permissions', 'subtype=ceiling', 'fsname=ceiling', 'entry_timeout=3600', 'attr_timeout=3600'];

/** The C reference filesystem, compiled into bench/work once. */
async function mountC(mnt) {
  const exe = path.join(REPO, 'bench', 'work', 'fuse-ceiling-c');
  await fs.mkdir(path.dirname(exe), { recursive: true });
  const flags = (await sh('pkg-config', ['--cflags', '--libs', 'fuse3'])).stdout.trim().split(/\s+/);
  const cc = await sh('cc', ['-O2', '-o', exe, path.join(REPO, 'bench', 'fuse-ceiling.c'), ...flags]);
  if (cc.code) throw new Error(`cc: ${cc.stderr}`);
  const child = spawn(exe, [String(SIZE), '-f', '-o', MOUNT_OPTIONS.join(','), mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  for (let i = 0; !(await bdiOf(mnt)); i++) {
    if (i > 200) throw new Error(`the C filesystem did not mount: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    stats: () => undefined,
    unmount: (cb) => void sh('fusermount3', ['-u', mnt]).then(() => exited).then(() => cb(null)),
    buckets: async () => {
      await exited;
      return JSON.parse(err.trim().split('\n').at(-1)).readBuckets;
    },
  };
}

async function mountWith(binding, mnt, sizes) {
  if (binding === 'c') return mountC(mnt);
  let Fuse;
  if (binding === '3') Fuse = (await import(path.join(REPO, 'dist/fuse/fuse3.js'))).loadFuse3();
  else Fuse = createRequire(import.meta.url)('fuse-native');
  const Sub = class extends Fuse {
    _fuseOptions() {
      return `-o${MOUNT_OPTIONS.join(',')}`;
    }
  };
  const f = new Sub(mnt, trivialOps(Fuse, binding === '3' ? undefined : sizes), { timeout: 60_000 });
  await new Promise((resolve, reject) => f.mount((err) => (err ? reject(err) : resolve())));
  return f;
}

async function bdiOf(mnt) {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const line = info.split('\n').find((l) => l.split(' ')[4] === mnt);
  return line?.split(' ')[2];
}

function parseDd(stderr) {
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(stderr);
  if (!m) throw new Error(`dd: ${stderr}`);
  return Number(m[1]) / Number(m[2]) / 1048576;
}

async function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function histogram(sizes) {
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  return [...sizes.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([len, n]) => `${len / 1024} KiB × ${n} (${((100 * n) / total).toFixed(1)} %)`)
    .join(', ');
}

const rows = [];
// The CPU column is this process's: the JS servers run in it, the C one in a child (not counted).
for (const binding of BINDINGS) {
  for (const ra of READAHEADS) {
    const mnt = await fs.mkdtemp(path.join(os.tmpdir(), `hexz-ceiling-${binding}-`));
    const sizes = new Map();
    const f = await mountWith(binding, mnt, sizes);
    try {
      const dev = await bdiOf(mnt);
      await fs.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(ra));
      const file = path.join(mnt, 'data');
      const dd = [];
      const cpu0 = await cpuSeconds();
      for (let i = 0; i < PASSES; i++) dd.push(parseDd((await sh('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'])).stderr));
      const cpu = ((await cpuSeconds()) - cpu0) / PASSES / (SIZE / 2 ** 30);
      // Request sizes of the dd passes only (fio's 4 KiB reads come after).
      if (binding === '3') {
        const st = f.stats();
        const bounds = [4, 8, 16, 32, 64, 128, 256, 512, 1024];
        st.readBuckets.forEach((n, i) => n && sizes.set((bounds[i] ?? 2048) * 1024, n));
      }
      const ddSizes = binding === 'c' ? undefined : histogram(sizes);
      const ddRequests = [...sizes.values()].reduce((a, b) => a + b, 0);
      const fio = await sh('fio', ['--name=seq', `--filename=${file}`, '--rw=read', '--bs=1M', '--ioengine=psync', '--iodepth=1', '--invalidate=0', '--output-format=json']);
      const fioMiBps = JSON.parse(fio.stdout.slice(fio.stdout.indexOf('{'))).jobs[0].read.bw_bytes / 1048576;
      const fio4k = await sh('fio', ['--name=rand', `--filename=${file}`, '--rw=randread', '--bs=4k', '--ioengine=psync', '--iodepth=1', '--direct=1', '--runtime=5', '--time_based', '--randrepeat=1', '--output-format=json']);
      const r4 = JSON.parse(fio4k.stdout.slice(fio4k.stdout.indexOf('{'))).jobs[0].read;
      rows.push({
        binding: { 3: 'libfuse3 (hexz-fuse3)', 2: 'libfuse2 (fuse-native)', c: 'libfuse3, C only (no JS)' }[binding],
        ra,
        dd: median(dd),
        ddAll: dd.map((x) => x.toFixed(0)).join(' / '),
        fio: fioMiBps,
        iops: r4.iops,
        p99: (r4.clat_ns?.percentile?.['99.000000'] ?? 0) / 1000,
        cpu: binding === 'c' ? NaN : cpu,
        sizes: ddSizes,
        requests: ddRequests,
      });
      console.error(JSON.stringify(rows.at(-1)));
    } finally {
      await new Promise((resolve) => f.unmount(() => resolve()));
      await sh('fusermount3', ['-uz', mnt]);
      await fs.rmdir(mnt).catch(() => {});
    }
    if (binding === 'c') {
      // The C filesystem counts every request (dd, then fio): the dd passes are the 1 MiB-class ones.
      const b = await f.buckets();
      const bounds = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];
      rows.at(-1).sizes = b.map((n, i) => (n ? `≤${bounds[i]} KiB × ${n}` : '')).filter(Boolean).join(', ') + ' (dd and fio)';
    }
  }
}

console.log(`\nFUSE ceiling: a ${SIZE / 2 ** 30} GiB file answered from memory, ${os.cpus().length} cores, kernel ${os.release()}\n`);
console.log('| binding | read_ahead_kb | dd bs=1M MiB/s (median; passes) | fio seq 1M MiB/s | fio 4k QD1 IOPS (p99 µs) | server CPU s/GiB | read requests: most frequent sizes (buckets for libfuse3) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.binding} | ${r.ra} | ${r.dd.toFixed(0)} (${r.ddAll}) | ${r.fio.toFixed(0)} | ${r.iops.toFixed(0)} (${r.p99.toFixed(0)}) | ${Number.isNaN(r.cpu) ? "n/a" : r.cpu.toFixed(2)} | ${r.sizes} |`);
process.exit(0);
