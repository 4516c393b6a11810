/**
 * The shape of the code base (issue 13), read from the sources: no file-level import cycle anywhere
 * in src/, storage/, cache/, routes/ and fuse/ (type-only imports excepted: they vanish at build), and
 * no file there longer than ~400 lines unless it says at its top why (a line starting "Why this file
 * is long:" in its first comment).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles } from '../helpers/import-cycles.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIRS = ['src', 'storage', 'cache', 'routes', 'fuse'];
const MAX_LINES = 420;

async function sources(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of DIRS) {
    for (const e of await fs.readdir(path.join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.d.ts')) continue;
      const full = path.join(e.parentPath, e.name);
      if (full.includes(`${path.sep}node_modules${path.sep}`) || full.includes(`${path.sep}native${path.sep}`)) continue;
      out.push(path.relative(ROOT, full));
    }
  }
  return out.sort();
}

/** Value imports (static, dynamic, re-exports; not `import type`) of each file, as repository paths. */
async function importGraph(files: string[]): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const source = await fs.readFile(path.join(ROOT, file), 'utf8');
    const specs: string[] = [];
    for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'/gms)) if (!m[2]) specs.push(m[3]);
    for (const m of source.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) specs.push(m[1]);
    graph.set(
      file,
      specs.map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(file), s)).replace(/\.js$/, '.ts')),
    );
  }
  return graph;
}

describe('code layout', () => {
  it('has no import cycle', async () => {
    const graph = await importGraph(await sources());
    expect(importCycles(graph)).toEqual([]);
    expect(graph.get('src/reader/archive.ts')).toContain('src/reader/pages.ts'); // the graph is read at all
  });

  it('has no file over ~400 lines that does not say why', async () => {
    const long: string[] = [];
    for (const file of await sources()) {
      const text = await fs.readFile(path.join(ROOT, file), 'utf8');
      const lines = text.split('\n').length;
      const head = text.slice(0, text.indexOf('*/') + 2);
      if (lines > MAX_LINES && !/Why this file is long:|longer than 400 lines|over 400 lines/i.test(head)) long.push(`${file} (${lines} lines)`);
    }
    expect(long).toEqual([]);
  });
});
