/**
 * Deterministic test data: a seeded PRNG (xorshift) so every test run sees the same bytes, plus
 * generators for the kinds of content archives meet (random, text, sparse, trees of files).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Seeded pseudo-random bytes: fast (xorshift128+ on 32-bit words), reproducible. */
export function randomBytesSeeded(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let s0 = (seed * 2654435761) >>> 0 || 1;
  let s1 = (seed * 40503 + 12345) >>> 0 || 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= x << 11;
    x ^= x >>> 8;
    s1 = (x ^ y ^ (y >>> 19)) >>> 0;
    out.writeUInt32LE((s1 + y) >>> 0, i);
  }
  for (; i < n; i++) out[i] = (s0 = (s0 * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

/** Compressible text of about n bytes. */
export function textBytes(n: number, seed = 1): Buffer {
  const words = ['archive', 'chunk', 'dedup', 'hexz', 'range', 'seek', 'zstd', 'lz4', 'index', 'page', 'root', 'trailer', 'the', 'a', 'of'];
  const r = randomBytesSeeded(Math.ceil(n / 4) + 16, seed);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = words[r[i % r.length] % words.length] + (r[(i + 7) % r.length] % 11 === 0 ? '\n' : ' ');
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('').slice(0, n));
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function sha256File(p: string): Promise<string> {
  return sha256(await fs.readFile(p));
}

/** Write files under `root`: path → content (string or bytes); `null` makes a directory. */
export async function writeTree(root: string, files: Record<string, string | Uint8Array | null>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (content === null) {
      await fs.mkdir(p, { recursive: true });
      continue;
    }
    await fs.mkdir(path.dirname(p), { recursive: true });
    await fs.writeFile(p, content);
  }
}

/** Every regular file below `root` with its sha256, keyed by relative path. */
export async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const d of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        out[`${r}/`] = 'dir';
        await walk(r);
      } else if (d.isSymbolicLink()) out[r] = `-> ${await fs.readlink(path.join(root, r))}`;
      else if (d.isFile()) out[r] = await sha256File(path.join(root, r));
    }
  };
  await walk('');
  return out;
}
