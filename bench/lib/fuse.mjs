// FUSE mounts for the benchmarks (hexz mount, squashfuse, casync mount) and fio runs over them. Every
// mount is registered for cleanup, so an error or Ctrl-C never leaves one behind.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { procUsage, runProcess, sleep } from './measure.mjs';
import { fuseUnmount, HEXZ_CLI, isMounted, NODE } from './tools.mjs';
import { registerCleanup } from './cleanup.mjs';

/**
 * Mount `kind` ('hexz' | 'squashfuse' | 'casync') at `mnt`, serving from a child process we own.
 * src: { archive } | { image } | { index, store }. Resolves once the mount answers.
 */
export async function mount(kind, src, mnt, opts = {}) {
  await fs.mkdir(mnt, { recursive: true });
  await fuseUnmount(mnt);
  let cmd;
  let args;
  const ready = path.join(path.dirname(mnt), `.${path.basename(mnt)}.ready`);
  await fs.rm(ready, { force: true });
  if (kind === 'hexz') {
    cmd = NODE;
    args = [HEXZ_CLI, ...(opts.global ?? []), 'mount', src.archive, mnt, '--ready-file', ready];
  } else if (kind === 'squashfuse') {
    cmd = 'squashfuse';
    args = ['-f', src.image, mnt];
  } else if (kind === 'casync') {
    cmd = 'casync';
    args = ['mount', `--store=${src.store}`, src.index, mnt];
  } else throw new Error(`unknown mount kind ${kind}`);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEXZ_PROGRESS: '0' } });
  let stderr = '';
  child.stderr.on('data', (d) => {
    if (stderr.length < 65536) stderr += d;
  });
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const unregister = registerCleanup(() => forceUnmount(mnt, child));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      unregister();
      throw new Error(`${kind} mount exited (${exited.code ?? exited.signal}) before mounting: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    const up = kind === 'hexz' ? existsSync(ready) && (await isMounted(mnt)) : await isMounted(mnt);
    if (up) break;
    if (Date.now() > deadline) {
      await forceUnmount(mnt, child);
      unregister();
      throw new Error(`${kind} mount did not come up within ${(opts.timeoutMs ?? 30_000) / 1000} s: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await sleep(50);
  }
  return {
    pid: child.pid,
    mnt,
    usage: () => procUsage(child.pid),
    async unmount() {
      await fuseUnmount(mnt);
      const t = setTimeout(() => child.kill('SIGTERM'), 5000);
      const t2 = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exit;
      clearTimeout(t);
      clearTimeout(t2);
      unregister();
      await fs.rm(ready, { force: true });
    },
  };
}

async function forceUnmount(mnt, child) {
  await fuseUnmount(mnt);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Parse fio's JSON output (it may print warnings before it). */
export function parseFio(stdout) {
  const i = stdout.indexOf('{');
  if (i < 0) throw new Error(`fio printed no JSON: ${stdout.slice(0, 300)}`);
  const j = JSON.parse(stdout.slice(i));
  const job = j.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  const r = job.read;
  const pct = r.clat_ns?.percentile ?? {};
  return {
    iops: r.iops,
    mibps: r.bw_bytes / 1048576,
    p50us: (pct['50.000000'] ?? 0) / 1000,
    p99us: (pct['99.000000'] ?? 0) / 1000,
    seconds: r.runtime / 1000,
  };
}

/** fio: 4 KiB random reads at queue depth 1 with O_DIRECT (every read reaches the FUSE server), time based. */
export async function fioRandom(file, seconds, bs = 4096) {
  const r = await runProcess('fio', ['--name=rand', `--filename=${file}`, '--rw=randread', `--bs=${bs}`, '--ioengine=psync', '--iodepth=1', '--direct=1', `--runtime=${seconds}`, '--time_based', '--randrepeat=1', '--output-format=json'], { stdout: 'capture' });
  return parseFio(r.stdout);
}

/**
 * fio: one sequential pass over the file in 1 MiB reads; through the page cache (kernel readahead on),
 * or with `direct` O_DIRECT so every byte comes from the FUSE server (its own caches) even when the
 * kernel still holds the file's pages.
 */
export async function fioSequential(file, { direct = false } = {}) {
  const r = await runProcess('fio', ['--name=seq', `--filename=${file}`, '--rw=read', '--bs=1M', '--ioengine=psync', '--iodepth=1', `--direct=${direct ? 1 : 0}`, '--invalidate=0', '--output-format=json'], { stdout: 'capture' });
  return parseFio(r.stdout);
}
