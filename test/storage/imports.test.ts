/**
 * The shape of storage/ (issue 13): no file-level import cycle among its modules, and no import of the
 * archive format (storage checks its own key syntax, storage/keys.ts). Read from the sources.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles } from '../helpers/import-cycles.js';

const STORAGE = fileURLToPath(new URL('../../storage/', import.meta.url));

/** Relative imports (static, dynamic and re-exports) of every storage/*.ts file, as storage file names. */
async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const name of (await fs.readdir(STORAGE)).filter((n) => n.endsWith('.ts'))) {
    const source = await fs.readFile(path.join(STORAGE, name), 'utf8');
    const specs = [...source.matchAll(/(?:from\s+|import\(\s*)'(\.[^']+)'/g)].map((m) => m[1]);
    graph.set(
      name,
      specs.map((s) => path.relative(STORAGE, path.resolve(STORAGE, s)).replace(/\.js$/, '.ts')),
    );
  }
  return graph;
}

describe('storage/ imports', () => {
  it('has no import cycle', async () => {
    const graph = await importGraph();
    expect(importCycles(graph)).toEqual([]);
    expect(graph.get('index.ts')).toContain('options.ts'); // the graph is read at all
  });

  it('never imports the archive format', async () => {
    const graph = await importGraph();
    const format = [...graph].flatMap(([file, deps]) => deps.filter((d) => d.startsWith('../src/format')).map((d) => `${file} → ${d}`));
    expect(format).toEqual([]);
  });
});
