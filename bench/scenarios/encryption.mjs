// Encryption costs: pack and warm full-read throughput of the mixed data set with and without
// `--encrypt --key-file` (AES-256-GCM per chunk, keyed BLAKE3 ids). Targets: encryption costs ≤ 15 % of
// pack throughput and ≤ 25 % of warm read throughput.
import path from 'node:path';
import { artifact, keyFile } from '../lib/artifacts.mjs';
import { measureTools, MiB, noteFor, usage } from '../lib/common.mjs';
import { runProcess, runTimed, warmTree } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { hexzPack, NODE, REPO } from '../lib/tools.mjs';

export const title = '7. Encryption cost (pack and warm read, with and without --encrypt)';

const COLS = [
  { key: 'mibps', label: 'throughput', unit: 'MiB/s', better: 'higher' },
  { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
  { key: 'cpu', label: 'CPU (user+sys)', unit: 's', better: 'lower' },
  { key: 'maxRssBytes', label: 'peak RSS', unit: 'bytes', better: 'lower' },
];

export async function run(ctx) {
  const mixed = await ctx.data.mixed();
  const out = await ctx.scratch('encryption');
  const key = await keyFile(ctx);
  await warmTree(mixed.dir);
  ctx.log('encryption: pack');
  const pack = await measureTools(ctx, [
    {
      name: 'hexz pack',
      run: async () => {
        const r = await hexzPack(mixed.dir, path.join(out, 'plain.hxz'));
        return { ...usage(r), stored: r.archiveBytes };
      },
    },
    {
      name: 'hexz pack --encrypt',
      run: async () => {
        const r = await hexzPack(mixed.dir, path.join(out, 'enc.hxz'), ['--encrypt'], { global: ['--key-file', key] });
        return { ...usage(r), stored: r.archiveBytes };
      },
    },
  ]);
  const t1 = table(`pack mixed (${(mixed.bytes / MiB).toFixed(0)} MiB), zstd 3, all cores`, COLS.concat([{ key: 'stored', label: 'stored', unit: 'bytes', better: 'lower' }]), { reference: 'hexz pack' });
  for (const [name, r] of pack) {
    const m = r.median;
    addRow(t1, name, m ? { mibps: mixed.bytes / MiB / m.wall, wall: m.wall, cpu: m.cpu, maxRssBytes: m.maxRssBytes, stored: m.stored } : {}, noteFor(r));
  }

  ctx.log('encryption: warm full read through the library');
  const plain = await artifact(ctx, 'mixed', 'hexz', mixed.dir);
  const enc = await artifact(ctx, 'mixed', 'hexz-enc', mixed.dir);
  const reader = path.join(REPO, 'bench', 'lib', 'hexz-readall.mjs');
  const readRun = (archive, extra) => async () => {
    const r = await runTimed(NODE, [reader, archive, ...extra], { stdout: 'capture' });
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    return { ...usage(r), inner: j.mibps, bytes: j.bytes };
  };
  const warm = async () => {
    for (const f of [plain.archive, enc.archive]) await runProcess('cat', [f], { stdout: '/dev/null' });
  };
  const read = await measureTools(ctx, [
    { name: 'hexz read (library)', prepare: warm, run: readRun(plain.archive, []) },
    { name: 'hexz read (library), encrypted', prepare: warm, run: readRun(enc.archive, ['--key-file', key]) },
  ]);
  const t2 = table(`read every file of mixed through the library, archive in the page cache (warm), one reader`, COLS.concat([{ key: 'inner', label: 'throughput inside the process', unit: 'MiB/s', better: 'higher' }]), { reference: 'hexz read (library)' });
  for (const [name, r] of read) {
    const m = r.median;
    addRow(t2, name, m ? { mibps: m.bytes / MiB / m.wall, wall: m.wall, cpu: m.cpu, maxRssBytes: m.maxRssBytes, inner: m.inner } : {}, noteFor(r));
  }
  const p0 = pack.get('hexz pack').median;
  const p1 = pack.get('hexz pack --encrypt').median;
  const packCost = 1 - p0.wall / p1.wall;
  ctx.targets.push({ id: 'encrypt-pack', text: 'encryption costs ≤ 15 % of pack throughput', measured: `${(mixed.bytes / MiB / p1.wall).toFixed(0)} vs ${(mixed.bytes / MiB / p0.wall).toFixed(0)} MiB/s: −${(packCost * 100).toFixed(1)} %`, bar: '≤ 15 %', met: packCost <= 0.15 });
  const r0 = read.get('hexz read (library)').median;
  const r1 = read.get('hexz read (library), encrypted').median;
  const readCost = 1 - r1.inner / r0.inner;
  ctx.targets.push({ id: 'encrypt-read', text: 'encryption costs ≤ 25 % of warm read throughput', measured: `${r1.inner.toFixed(0)} vs ${r0.inner.toFixed(0)} MiB/s: −${(readCost * 100).toFixed(1)} %`, bar: '≤ 25 %', met: readCost <= 0.25 });
  return {
    tables: [t1, t2],
    meaning: [
      'Encrypted = `hexz --key-file K pack --encrypt` (AES-256-GCM per chunk with a nonce derived from the keyed chunk id, BLAKE3 keyed ids, encrypted index); plain = the same command without encryption, in the same run, interleaved.',
      'Read: bench/lib/hexz-readall.mjs opens the archive with openArchive() and streams every file with Archive.pieces() (decompress, verify, decrypt on the way into the cache), discarding the bytes; "warm" = the .hxz file is in the page cache (read once with cat before each run), the process and its block cache are fresh. "throughput inside the process" leaves Node start-up and opening out; the cost target uses it.',
    ],
  };
}
