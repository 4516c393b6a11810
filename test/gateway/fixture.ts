/**
 * Shared setup of the gateway tests: a small dataset with every kind of entry (multi-chunk binary,
 * text, empty file, sparse file, unicode name, symlinks, nested directories), archives packed from it
 * into a storage directory, and thin HTTP helpers (fetch, curl as a child process, multipart parsing).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pack, type PackOptions } from '@hexz/src/packer/pack.js';
import { run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';

export const MiB = 1024 * 1024;

/** Files of the dataset, by path (symlinks are made separately). */
export function datasetFiles(): Record<string, Uint8Array | string | null> {
  const sparse = Buffer.alloc(3 * MiB);
  sparse.write('hexz', 2 * MiB);
  return {
    'data/big.bin': randomBytesSeeded(3 * MiB + 12345, 7),
    'data/table.csv': textBytes(600_000, 3),
    'data/sparse.img': sparse,
    'docs/readme.md': '# Readme\n\nHello from the gateway tests.\n',
    'docs/deep/a/b/c.txt': 'deep\n',
    'empty.txt': '',
    'unicode/naïve café.txt': 'ünïcödé\n',
    'emptydir': null,
  };
}

/**
 * Write the dataset under `dir` (with symlinks `link` → docs/readme.md, `docs/deep/link.txt` →
 * a/b/c.txt and `out` → ../../etc/passwd).
 */
export async function writeDataset(dir: string): Promise<void> {
  await writeTree(dir, datasetFiles());
  await fs.symlink('docs/readme.md', path.join(dir, 'link'));
  await fs.symlink('a/b/c.txt', path.join(dir, 'docs/deep/link.txt'));
  await fs.symlink('../../etc/passwd', path.join(dir, 'out'));
  const when = new Date('2026-01-02T03:04:05Z');
  await fs.utimes(path.join(dir, 'docs/readme.md'), when, when);
}

/** Pack `input` into `root/NAME.hxz`. */
export async function packArchive(input: string, root: string, name: string, opts: PackOptions = {}): Promise<string> {
  const out = path.join(root, `${name}.hxz`);
  await fs.mkdir(path.dirname(out), { recursive: true });
  await pack(input, out, { threads: 2, overwrite: true, ...opts });
  return out;
}

/** A GET/HEAD with fetch; body as bytes. */
export async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(url, { method, headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** JSON body of a GET. */
export async function getJson<T = any>(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: T }> {
  const r = await get(url, headers);
  return { status: r.status, headers: r.headers, json: JSON.parse(r.body.toString('utf8')) as T };
}

/** curl as a user runs it; returns status, headers (lower-cased) and the exact body bytes. */
export async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  // -i puts the header block in front of the body: split at the first blank line.
  const r = await run('curl', ['-s', '-S', '-i', ...args]);
  if (r.code !== 0) throw new Error(`curl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  const out = r.stdout;
  const end = out.indexOf('\r\n\r\n');
  const lines = out.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers, body: out.subarray(end + 4) };
}

/** Parts of a multipart/byteranges body: each part's headers and bytes. */
export function parseMultipart(body: Buffer, contentType: string): Array<{ headers: Record<string, string>; bytes: Buffer }> {
  const m = /boundary=([^;\s]+)/.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`);
  const parts: Array<{ headers: Record<string, string>; bytes: Buffer }> = [];
  let at = body.indexOf(delim);
  for (;;) {
    const next = body.indexOf(delim, at + delim.length);
    if (next < 0) break;
    const start = at + delim.length + 2; // CRLF after the boundary line
    const headEnd = body.indexOf('\r\n\r\n', start);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(start, headEnd).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, bytes: body.subarray(headEnd + 4, next - 2) }); // CRLF before the next boundary
    at = next;
  }
  if (body.subarray(at + delim.length, at + delim.length + 2).toString() !== '--') throw new Error('multipart body without a closing delimiter');
  return parts;
}
