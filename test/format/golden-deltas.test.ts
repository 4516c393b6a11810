/**
 * Golden fixtures of what a second reader must get right from docs/format.md alone: location hints
 * stored as percent-encoded URI references and resolved by RFC 3986 (section 5), an absolute-path hint
 * resolved from the root of the delta's own file system, and empty files whose offsets are 0 wherever
 * they sort (section 7.2). Made by test/fixtures/generate-deltas.mjs from the committed golden.hxz.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { resolveLocation } from '@hexz/storage/index.js';
import { hexz } from '../helpers/cli.js';
import { decodeArchive } from '../helpers/craft.js';
import { makeTempDir } from '../helpers/tmp.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const ENCODED_HINT = '../b%20ase%231/v%201%2520%C3%BC.hxz';
const ABSOLUTE_HINT = '/hexz-golden/golden.hxz';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('hexz-golden-deltas-');
  // The layout the delta was packed in: the base one folder up, under its awkward name.
  await fs.mkdir(path.join(tmp.dir, 'b ase#1'));
  await fs.copyFile(path.join(fixtures, 'golden.hxz'), path.join(tmp.dir, 'b ase#1', 'v 1%20ü.hxz'));
  await fs.mkdir(path.join(tmp.dir, 'deltas'));
  for (const f of ['golden-delta-encoded-hint.hxz', 'golden-delta-absolute-hint.hxz']) await fs.copyFile(path.join(fixtures, f), path.join(tmp.dir, 'deltas', f));
});
afterAll(() => tmp.cleanup());

describe('golden deltas (test/fixtures/golden-delta-*.hxz)', () => {
  it('an encoded hint is a URI reference: stored percent-encoded, resolved by RFC 3986, read exactly', async () => {
    const bytes = await fs.readFile(path.join(fixtures, 'golden-delta-encoded-hint.hxz'));
    const { root, entries } = decodeArchive(bytes);
    expect(root.bases.map((b) => b.hint)).toEqual([ENCODED_HINT]);
    const delta = path.join(tmp.dir, 'deltas', 'golden-delta-encoded-hint.hxz');
    const a = await openArchive(delta);
    try {
      const [found] = await a.findBases();
      expect(decodeURIComponent(new URL(found.url).pathname)).toBe(path.join(tmp.dir, 'b ase#1', 'v 1%20ü.hxz'));
      // README.txt comes from the base (deduplicated), added.txt from the delta.
      const whole = async (p: string) => Buffer.from(await a.read(p, 0, (await a.stat(p)).size));
      expect(sha256(await whole('README.txt'))).toBe(sha256(Buffer.from('Golden fixture of the .hxz v2 format.\n'.repeat(50))));
      expect((await whole('added.txt')).toString()).toBe('only in the delta\n'.repeat(20));
      expect((await verifyArchive(a)).problems).toEqual([]);
    } finally {
      await a.close();
    }
    // The empty file: offsets 0 although it sorts after README.txt and added.txt (section 7.2).
    const empty = entries.find((e) => e.path === 'empty.bin')!;
    expect([empty.size, empty.logical, empty.firstRef, empty.refCount]).toEqual([0, 0, 0, 0]);
    expect(entries.find((e) => e.path === 'added.txt')!.logical).toBeGreaterThan(0);
  });

  it('an absolute-path hint is resolved from the root of the delta’s file system, not below its folder', async () => {
    const bytes = await fs.readFile(path.join(fixtures, 'golden-delta-absolute-hint.hxz'));
    expect(decodeArchive(bytes).root.bases.map((b) => b.hint)).toEqual([ABSOLUTE_HINT]);
    const delta = path.join(tmp.dir, 'deltas', 'golden-delta-absolute-hint.hxz');
    expect(resolveLocation(`file://${delta}`, ABSOLUTE_HINT)).toBe('file:///hexz-golden/golden.hxz');
    expect(resolveLocation('s3://bucket/ds/v2.hxz', ABSOLUTE_HINT)).toBe('s3://bucket/hexz-golden/golden.hxz');
    // Not there on this machine: BASE_MISSING naming exactly that place (never …/deltas/hexz-golden/…).
    const r = await hexz(['verify', delta]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('looked at file:///hexz-golden/golden.hxz');
    // Listing needs no base; with the base located by the user, everything reads.
    expect((await hexz(['ls', delta])).stdout.toString().split('\n').filter(Boolean)).toEqual(['README.txt', 'added.txt', 'empty.bin']);
    const uuid = (await openArchive(path.join(fixtures, 'golden.hxz')).then(async (g) => (await g.close(), g.uuid)));
    const mapped = await hexz(['--base-map', `${uuid}=${path.join(fixtures, 'golden.hxz')}`, 'verify', delta]);
    expect(mapped.code, mapped.stderr).toBe(0);
  });
});
