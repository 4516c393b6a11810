/**
 * Local writers under interruption, on real files: an abort signal stops writes and the commit (a
 * commit never starts after it), `abortOpenWriters` (the CLI's second Ctrl-C) cleans up every writer
 * still open, and a process that exits without aborting still leaves no temporary file behind.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { abortOpenWriters, canonicalUrl, createWriter, sameObject } from '@hexz/storage/index.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTempDir('hexz-writers-');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HexzError) return err.code;
    throw err;
  }
  return 'OK';
}

async function subdir(name: string): Promise<string> {
  const d = path.join(tmp.dir, name);
  await fs.mkdir(d);
  return d;
}

describe('local writers', () => {
  it('an abort signal fails writes and the commit: nothing is renamed into place', async () => {
    const dir = await subdir('signal');
    const ac = new AbortController();
    const w = await createWriter(path.join(dir, 'a.hxz'), { signal: ac.signal });
    await w.write(Buffer.alloc(1000, 1));
    ac.abort(new Error('Ctrl-C'));
    expect(await codeOf(w.write(Buffer.alloc(10)))).toBe('ABORTED');
    expect(await codeOf(w.commit())).toBe('ABORTED');
    await w.abort();
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('abortOpenWriters aborts every writer still open, and forgets committed ones', async () => {
    const dir = await subdir('open');
    const done = await createWriter(path.join(dir, 'done.hxz'));
    await done.write(Buffer.from('kept'));
    await done.commit();
    const a = await createWriter(path.join(dir, 'a.hxz'));
    const b = await createWriter(path.join(dir, 'b.hxz'));
    await a.write(Buffer.alloc(5000));
    await b.write(Buffer.alloc(5000));
    expect((await fs.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toHaveLength(2);
    await abortOpenWriters(new Error('second Ctrl-C'), 2000);
    expect(await fs.readdir(dir)).toEqual(['done.hxz']);
    expect(await codeOf(a.commit())).not.toBe('OK');
  });

  it('a process that exits without aborting its writer leaves no temporary file', async () => {
    const dir = await subdir('exit');
    const dist = pathToFileURL(fileURLToPath(new URL('../../dist/storage/index.js', import.meta.url))).href;
    const script = `
      const { createWriter } = await import(${JSON.stringify(dist)});
      const w = await createWriter(${JSON.stringify(path.join(dir, 'out.hxz'))});
      await w.write(Buffer.alloc(1 << 20));
      const fs = await import('node:fs');
      console.log(fs.readdirSync(${JSON.stringify(dir)}).join(','));
      process.exit(130); // what a second Ctrl-C used to do: no abort, no commit`;
    const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).catch((e: { code: number; stdout: string }) => e);
    expect(r.stdout).toMatch(/^\.out\.hxz\.[0-9a-f]{8}-\d+\.[0-9a-f]+\.tmp$/m); // it existed while the process ran
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('sameObject', () => {
  it('compares canonical URLs, real paths and inodes', async () => {
    const dir = await subdir('same');
    const f = path.join(dir, 'a.hxz');
    await fs.writeFile(f, 'x');
    await fs.symlink(f, path.join(dir, 'sym.hxz'));
    await fs.link(f, path.join(dir, 'hard.hxz'));
    await fs.writeFile(path.join(dir, 'other.hxz'), 'x');
    expect(await sameObject(f, `${dir}/./a.hxz`)).toBe(true);
    expect(await sameObject(f, pathToFileURL(f).href)).toBe(true);
    expect(await sameObject(f, path.join(dir, 'sym.hxz'))).toBe(true);
    expect(await sameObject(f, path.join(dir, 'hard.hxz'))).toBe(true);
    expect(await sameObject(f, path.join(dir, 'other.hxz'))).toBe(false);
    expect(await sameObject(f, path.join(dir, 'missing.hxz'))).toBe(false);
    expect(await sameObject('s3://b/ds/v1.hxz', 's3://b/ds/v%31.hxz')).toBe(true);
    expect(await sameObject('s3://b/ds/a b.hxz', 's3://b/ds/a%20b.hxz')).toBe(true);
    expect(await sameObject('s3://b/ds/v1.hxz', 's3://c/ds/v1.hxz')).toBe(false);
    expect(await sameObject('https://EXAMPLE.org:443/a.hxz', 'https://example.org/a.hxz')).toBe(true);
    expect(canonicalUrl('s3://b/x%2fy.hxz')).toBe('s3://b/x%2Fy.hxz');
  });
});
