/** `hexz serve` as a child process, the way a user (or the image's CMD) starts it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './cli.js';

export interface ServeProcess {
  child: ChildProcess;
  /** http://HOST:PORT, from the "hexz gateway listening" log line. */
  url: string;
  /** Resolves with the exit code. */
  exit: Promise<number | null>;
  /** stdout and stderr so far. */
  output(): string;
}

/** Children started by `spawnServe`, for `stopAllServes` in afterAll. */
const started = new Set<ChildProcess>();

/**
 * Start `hexz [globals…] serve args…` (port and storage are up to the caller: pass `--port 0`) and
 * resolve once it listens. The environment adds `env` to the test's own, with progress off and info
 * logs on (the URL comes from the log line). Rejects with the output if it exits first.
 */
export async function spawnServe(args: string[], opts: { env?: Record<string, string>; globals?: string[] } = {}): Promise<ServeProcess> {
  const c = spawn(process.execPath, [CLI, ...(opts.globals ?? []), 'serve', ...args], {
    env: { ...process.env, HEXZ_PROGRESS: '0', HEXZ_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(c);
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) =>
    c.on('exit', (code) => {
      started.delete(c);
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    c.stdout!.on('data', () => {
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    void exit.then(() => reject(new Error(`hexz serve exited early: ${out}`)));
  });
  return { child: c, url, exit, output: () => out };
}

/** SIGTERM every gateway `spawnServe` started that is still running, and wait for them. */
export async function stopAllServes(): Promise<void> {
  await Promise.all(
    [...started].map(async (c) => {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }),
  );
}
