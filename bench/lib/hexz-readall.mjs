#!/usr/bin/env node
// Child process: read every file of an archive through the library (Archive.walk + pieces: decompress,
// verify, decrypt when encrypted), discarding the bytes. Prints one JSON line:
// { files, bytes, seconds, mibps, openMs }.
//   node bench/lib/hexz-readall.mjs ARCHIVE [--key-file F] [--concurrency N]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './tools.mjs';

const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const archivePath = args[0];
const keyFile = opt('--key-file', null);
const concurrency = Number(opt('--concurrency', '1'));
const dist = (p) => import(pathToFileURL(path.join(REPO, 'dist', p)).href);
const { openArchive } = await dist('src/reader/archive.js');
let key;
if (keyFile) {
  const { readKeyFile } = await dist('src/crypto/key-files.js');
  key = { kind: 'key', key: await readKeyFile(keyFile) };
}
const t0 = process.hrtime.bigint();
const archive = await openArchive(path.resolve(archivePath), { key });
const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
const files = [];
for await (const e of archive.walk()) if (e.type === 'file') files.push(e);
let bytes = 0;
let next = 0;
const start = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < files.length) {
      const e = files[next++];
      for await (const p of archive.pieces(e)) bytes += p.bytes.byteLength;
    }
  }),
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await archive.close();
process.stdout.write(`${JSON.stringify({ files: files.length, bytes, seconds, mibps: bytes / 1048576 / seconds, openMs })}\n`);
