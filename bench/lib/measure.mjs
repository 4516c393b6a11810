// Measuring whole processes: wall time, CPU time (user + system, children included) and peak RSS,
// through GNU time (`/usr/bin/time -v`, Debian package `time`), and medians over several runs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';
export const hasGnuTime = () => existsSync(GNU_TIME);

let seq = 0;

/** Parse the report of `/usr/bin/time -v`. */
export function parseTimeV(text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  const user = num(/User time \(seconds\):\s*([\d.]+)/);
  const sys = num(/System time \(seconds\):\s*([\d.]+)/);
  const rssKiB = num(/Maximum resident set size \(kbytes\):\s*(\d+)/);
  return {
    user,
    sys,
    cpu: user === null || sys === null ? null : user + sys,
    maxRssBytes: rssKiB === null ? null : rssKiB * 1024,
  };
}

/**
 * Run a command to completion under `/usr/bin/time -v`.
 * opts: cwd, env, input (string/Buffer for stdin), stdout ('ignore' | 'capture' | a file path),
 * timeoutMs, allowFail.
 * Returns { wall, cpu, user, sys, maxRssBytes, code, stdout, stderr }. Throws on a non-zero exit unless
 * allowFail.
 */
export async function runTimed(cmd, args = [], opts = {}) {
  const timeFile = path.join(os.tmpdir(), `hexz-bench-time-${process.pid}-${++seq}.txt`);
  const timed = hasGnuTime();
  const argv = timed ? [GNU_TIME, ['-v', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const out = await runProcess(argv[0], argv[1], opts);
  let usage = { user: null, sys: null, cpu: null, maxRssBytes: null };
  if (timed) {
    try {
      usage = parseTimeV(await fs.readFile(timeFile, 'utf8'));
    } catch {
      /* time could not write: leave nulls */
    }
    await fs.rm(timeFile, { force: true });
  }
  return { ...usage, wall: out.wall, code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/** Run a command (no timing of its own besides wall clock). Same options as runTimed. */
export function runProcess(cmd, args = [], opts = {}) {
  return new Promise((resolve, reject) => {
    let stdoutFd = 'ignore';
    let fileHandle = null;
    const capture = opts.stdout === 'capture';
    if (capture) stdoutFd = 'pipe';
    const start = process.hrtime.bigint();
    const go = () => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        stdio: [opts.input !== undefined ? 'pipe' : 'ignore', stdoutFd, 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      if (capture) child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => {
        if (stderr.length < 1 << 20) stderr += d;
      });
      if (opts.input !== undefined) child.stdin.end(opts.input);
      let timer = null;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          stderr += `\n[bench] timed out after ${opts.timeoutMs} ms: killed`;
          child.kill('SIGKILL');
        }, opts.timeoutMs);
      }
      child.on('error', (err) => {
        if (timer) clearTimeout(timer);
        if (fileHandle) fileHandle.close().catch(() => {});
        reject(err);
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        if (fileHandle) fileHandle.close().catch(() => {});
        const wall = Number(process.hrtime.bigint() - start) / 1e9;
        const res = { code: code ?? (signal ? 128 : 1), signal, wall, stdout, stderr };
        if (res.code !== 0 && !opts.allowFail) {
          const e = new Error(`${path.basename(cmd)} ${args.slice(0, 12).join(' ')} exited ${res.code}${signal ? ` (${signal})` : ''}: ${stderr.trim().split('\n').slice(-6).join(' | ')}`);
          e.result = res;
          reject(e);
        } else resolve(res);
      });
    };
    if (opts.stdout && opts.stdout !== 'ignore' && !capture) {
      fs.open(opts.stdout, 'w').then((h) => {
        fileHandle = h;
        stdoutFd = h.fd;
        go();
      }, reject);
    } else go();
  });
}

/** Run synchronously and return trimmed stdout, or '' on failure (probing tools and versions). */
export function probe(cmd, args = [], opts = {}) {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 10_000, env: opts.env ? { ...process.env, ...opts.env } : process.env });
    if (r.error) return '';
    return `${r.stdout ?? ''}${opts.stderr ? (r.stderr ?? '') : ''}`.trim();
  } catch {
    return '';
  }
}

export function which(cmd) {
  const r = spawnSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Median of each numeric field across runs (objects with the same keys). */
export function medianOf(runs) {
  const out = {};
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  for (const k of keys) {
    const vals = runs.map((r) => r[k]);
    out[k] = vals.every((x) => typeof x === 'number' || x === null || x === undefined) ? median(vals) : vals[vals.length - 1];
  }
  out.runs = runs.length;
  return out;
}

/** Whether page caches can be dropped (root with a writable /proc/sys/vm/drop_caches). */
let dropState = null;
export function canDropCaches() {
  if (dropState === null) {
    try {
      spawnSync('sync');
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      dropState = true;
    } catch {
      dropState = false;
    }
  }
  return dropState;
}

/** sync and drop the page cache, dentries and inodes; false when not allowed. */
export function dropCaches() {
  if (!canDropCaches()) return false;
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Read a whole tree once so that it is in the page cache ("warm"). */
export async function warmTree(dir) {
  await runProcess('bash', ['-c', `find "$1" -type f -print0 | xargs -0 -r cat > /dev/null`, 'warm', dir], { allowFail: true });
}

/** Apparent size in bytes of a file or a tree (sum of st_size of regular files). */
export async function treeBytes(p) {
  let st;
  try {
    st = await fs.lstat(p);
  } catch {
    return 0;
  }
  if (st.isFile()) return st.size;
  if (!st.isDirectory()) return 0;
  let total = 0;
  for (const e of await fs.readdir(p, { withFileTypes: true })) {
    total += await treeBytes(path.join(p, e.name));
  }
  return total;
}

/** CPU seconds (user+sys) and RSS of a running process from /proc, summed over its descendants. */
export async function procUsage(rootPid) {
  const pids = await descendants(rootPid);
  let cpuTicks = 0;
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    try {
      const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuTicks += Number(f[11]) + Number(f[12]);
      const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
      const m = status.match(/VmRSS:\s*(\d+) kB/);
      const h = status.match(/VmHWM:\s*(\d+) kB/);
      if (m) rss += Number(m[1]) * 1024;
      if (h) hwm += Number(h[1]) * 1024;
    } catch {
      /* exited */
    }
  }
  return { cpu: cpuTicks / CLK_TCK, rssBytes: rss, hwmBytes: hwm, pids: pids.length };
}

const CLK_TCK = Number(probe('getconf', ['CLK_TCK'])) || 100;

async function descendants(root) {
  const children = new Map();
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** Sample a process tree's RSS every `everyMs` until stopped; returns { stop(): {peakRss, samples} }. */
export function sampleRss(pid, everyMs = 200) {
  let peak = 0;
  let samples = 0;
  let stopped = false;
  const tick = async () => {
    while (!stopped) {
      const u = await procUsage(pid);
      peak = Math.max(peak, u.rssBytes);
      samples++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  };
  const done = tick();
  return {
    async stop() {
      stopped = true;
      await done;
      return { peakRssBytes: peak, samples };
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
