/**
 * Tests exercise the built output in dist/ (what users run; the packer starts worker threads from
 * compiled files). So that `npx vitest` after an edit never tests stale code, this builds first when
 * any source is newer than the last build (`make test` has just built: then it costs a directory walk).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** The folders tsconfig.json compiles. */
const SOURCES = ['src', 'storage', 'cache', 'routes', 'fuse'];
/** Written by the last build of this setup or of `make build` (tsc touches every output it writes). */
const BUILT = path.join(REPO, 'dist/src/cli/main.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const sources = Math.max(statSync(path.join(REPO, 'tsconfig.json')).mtimeMs, ...SOURCES.map((d) => newest(path.join(REPO, d))));
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= sources) return;
  process.stderr.write('test/global-setup: sources are newer than dist/: building (npx tsc -p tsconfig.json)\n');
  execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.json')], { stdio: 'inherit' });
}
