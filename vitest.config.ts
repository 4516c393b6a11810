import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Tests exercise the built output in dist/ (what users run): the packer spawns worker threads from
// compiled .js files. `make test` builds first; test/global-setup.ts rebuilds when sources are newer,
// so `npx vitest` after an edit never tests stale code.
const dist = fileURLToPath(new URL('./dist/', import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^@hexz\/(.*)$/, replacement: `${dist}$1` }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Fails a file whose code leaves a FileHandle to the garbage collector (test/setup-warnings.ts).
    setupFiles: ['test/setup-warnings.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    execArgv: ['--expose-gc'],
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
