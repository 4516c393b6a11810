/**
 * Keeps the benchmark harness (bench/) from rotting: its smoke mode runs every scenario on tiny data,
 * once, with whatever peers are installed (none are required). No timing assertions: only that it
 * finishes, exits 0 and writes its results.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/tmp.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUN = path.join(REPO, 'bench', 'run.mjs');

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // SIGINT: the harness unmounts and stops its servers before exiting.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('hexz-bench-smoke-');
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('bench harness (smoke mode)', () => {
  it('rejects unknown options and scenarios', async () => {
    const r = await runBench(['--smoke', '--scenarios', 'nope', '--work', tmp.dir], 30_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown scenario nope/);
  });

  it(
    'runs every scenario on tiny data and writes latest.json and latest.md',
    async () => {
      const r = await runBench(['--smoke', '--work', tmp.dir], 240_000);
      expect(r.code, r.stderr.split('\n').slice(-40).join('\n')).toBe(0);
      const out = path.join(tmp.dir, 'results-smoke');
      expect(existsSync(path.join(out, 'latest.md'))).toBe(true);
      const json = JSON.parse(await fs.readFile(path.join(out, 'latest.json'), 'utf8'));
      expect(json.machine.cores).toBeGreaterThan(0);
      const ids = json.scenarios.map((s: { id: string }) => s.id);
      expect(ids).toEqual(['pack', 'versions', 'extract', 'random', 'gateway', 'micro', 'encryption', 'workspaces']);
      for (const s of json.scenarios) {
        expect(s.error, `scenario ${s.id}`).toBeUndefined();
        if (!s.skipped) expect(s.tables.length, `scenario ${s.id}`).toBeGreaterThan(0);
      }
      // hexz itself is measured in every table of the pack scenario.
      const pack = json.scenarios.find((s: { id: string }) => s.id === 'pack');
      for (const t of pack.tables) expect(t.rows.some((row: { tool: string }) => row.tool.startsWith('hexz'))).toBe(true);
      // No mount or server is left behind.
      const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
      expect(mounts.includes(tmp.dir)).toBe(false);
    },
    300_000,
  );
});
