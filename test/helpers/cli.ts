/** Run the built CLI as a child process, the way a user does. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** `hexz args…` with optional stdin and environment additions; never throws on a non-zero exit. */
export function hexz(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: Uint8Array } = {}): Promise<CliResult> {
  return run(process.execPath, [CLI, ...args], { ...opts, env: { HEXZ_PROGRESS: '0', ...opts.env } });
}

/** Like hexz() but parses --json output. */
export async function hexzJson<T = any>(args: string[], opts: Parameters<typeof hexz>[1] = {}): Promise<{ code: number; json: T; stderr: string }> {
  const r = await hexz(['--json', ...args], opts);
  return { code: r.code, json: JSON.parse(r.stdout.toString() || 'null') as T, stderr: r.stderr };
}

/** Run any command (dd, sha256sum, curl…) and collect its output; `input` goes to its stdin. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: Uint8Array } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => {}); // a command that exits without reading its input
    child.stdin.end(opts.input);
  });
}
