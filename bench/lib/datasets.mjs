// Deterministic data set generators. Every data set lives in WORK/data/NAME-TAG/ with a manifest
// WORK/data/NAME-TAG.json written last: a data set whose manifest exists is reused as is.
//
//   mixed        compressible text, structured binary, incompressible ("already compressed"), sparse
//                files, exact and near duplicates, small files, one large mixed file
//   versions     v1 = mixed; v2..v4 = successive edits, each recording the bytes really changed
//   disk         one disk-image-like file (mostly zeros plus filesystem-like blocks) and a v2 of it
//   small-files  N files of 1–16 KiB
//   workspace    small files, one large incompressible file and incompressible filler (workspaces, full size)
//   real         files from this machine and from npm packages (several versions of one package)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { binaryBytes, randomStream, rng, textBytes } from './prng.mjs';
import { runProcess } from './measure.mjs';

const MiB = 1 << 20;
const KiB = 1 << 10;
const GiB = 1 << 30;
const FIXED_MTIME = new Date('2024-06-01T12:00:00Z');
/** Generator version, part of every data set's folder name: bump it when a generator changes. */
const GEN = 'g2';

async function writeChunked(file, size, produce) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const h = await fs.open(file, 'w');
  try {
    for (let at = 0; at < size; ) {
      const n = Math.min(4 * MiB, size - at);
      const buf = produce(n, at);
      await h.write(buf, 0, n, at);
      at += n;
    }
  } finally {
    await h.close();
  }
  await fs.utimes(file, FIXED_MTIME, FIXED_MTIME);
}

/** Content of one "kind": text (log/csv/json), bin (structured), rand (incompressible), mix (1 MiB runs of each). */
function producer(kind, seed) {
  const r = rng(seed);
  const rand = randomStream(seed);
  if (kind === 'rand') return (n) => rand(n);
  if (kind === 'bin') return (n) => binaryBytes(r, n);
  if (kind === 'log' || kind === 'csv' || kind === 'json') return (n) => textBytes(r, n, kind);
  if (kind === 'mix') {
    // 1 MiB segments: text 50 %, binary 30 %, random 20 %.
    return (n, at) => {
      const out = Buffer.allocUnsafe(n);
      for (let o = 0; o < n; ) {
        const seg = Math.min(n - o, MiB - ((at + o) % MiB));
        const segNo = Math.floor((at + o) / MiB);
        const pick = rng(`${seed}/seg${segNo}`).float();
        const piece = pick < 0.5 ? textBytes(r, seg, ['log', 'csv', 'json'][segNo % 3]) : pick < 0.8 ? binaryBytes(r, seg) : rand(seg);
        piece.copy(out, o);
        o += seg;
      }
      return out;
    };
  }
  throw new Error(`unknown kind ${kind}`);
}

const TEXT_KINDS = ['log', 'csv', 'json'];
const EXT = { log: '.log', csv: '.csv', json: '.jsonl', bin: '.bin', rand: '.jpg', mix: '.dat' };

async function done(work, name) {
  const m = path.join(work, 'data', `${name}.json`);
  if (!existsSync(m)) return null;
  try {
    return JSON.parse(await fs.readFile(m, 'utf8'));
  } catch {
    return null;
  }
}

async function finish(work, name, manifest) {
  await fs.writeFile(path.join(work, 'data', `${name}.json`), JSON.stringify(manifest, null, 1));
  return manifest;
}

async function fresh(dir) {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
}

// ---- mixed ----------------------------------------------------------------------------------------

/**
 * The `mixed` data set of about `size` bytes (logical, sparse files counted at their apparent size).
 * Returns the manifest: { dir, bytes, files, largeFile, largeSize, editable: [relative paths] }.
 */
export async function mixed(work, size, log = () => {}) {
  const name = `mixed-${GEN}-${size}`;
  const have = await done(work, name);
  if (have) return have;
  const dir = path.join(work, 'data', name);
  log(`generating mixed (${fmtSize(size)}) in ${dir}`);
  await fresh(dir);
  const r = rng(`mixed/${size}`);
  const files = [];
  const add = async (rel, kind, bytes, seed) => {
    await writeChunked(path.join(dir, rel), bytes, producer(kind, seed ?? rel));
    files.push({ rel, kind, bytes });
  };
  // One large mixed file: the target of the random-read, mount and gateway scenarios.
  const largeSize = Math.max(2 * MiB, Math.min(256 * MiB, Math.floor(size / 4 / MiB) * MiB));
  await add('large/dataset.dat', 'mix', largeSize);
  let budget = size - largeSize;
  const share = (f) => Math.floor((size - largeSize) * f);
  // Small files: 2,000 at full size (1 GiB), scaled, 1–32 KiB each.
  const smallCount = Math.max(20, Math.round(2000 * (size / (1 << 30))));
  const smallProducers = Object.fromEntries(['log', 'csv', 'json', 'bin', 'rand'].map((k) => [k, producer(k, `mixed-small/${k}`)]));
  for (let i = 0; i < smallCount; i++) {
    const kind = r.pick(['log', 'csv', 'json', 'json', 'bin', 'rand']);
    const bytes = r.int(1 * KiB, 32 * KiB);
    const rel = `small/d${String(i % 20).padStart(2, '0')}/s${String(i).padStart(5, '0')}${EXT[kind]}`;
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), smallProducers[kind](bytes, 0));
    utimesSync(path.join(dir, rel), FIXED_MTIME, FIXED_MTIME);
    files.push({ rel, kind, bytes });
    budget -= bytes;
  }
  // Sparse files: 10 %: mostly holes with a few data extents.
  const sparseTotal = share(0.1);
  let sparseDone = 0;
  for (let i = 0; sparseDone < sparseTotal; i++) {
    const bytes = Math.min(sparseTotal - sparseDone, r.logUniform(1 * MiB, 64 * MiB));
    const rel = `vm/sparse-${i}.img`;
    await writeSparse(path.join(dir, rel), bytes, `sparse${i}`);
    files.push({ rel, kind: 'sparse', bytes });
    sparseDone += bytes;
  }
  budget -= sparseDone;
  // Duplicates: exact copies and near copies of earlier files, 7 %.
  const dupTarget = share(0.07);
  budget -= dupTarget;
  // What is left: text 48 %, structured binary 26 %, random ("already compressed") 26 %.
  const plan = [
    ['text', budget * 0.48],
    ['bin', budget * 0.26],
    ['rand', budget * 0.26],
  ];
  for (const [kind, total] of plan) {
    let made = 0;
    for (let i = 0; made < total - 4 * KiB; i++) {
      const bytes = Math.min(Math.round(total - made), r.logUniform(4 * KiB, 32 * MiB));
      const k = kind === 'text' ? TEXT_KINDS[i % 3] : kind;
      const sub = kind === 'text' ? 'logs' : kind === 'bin' ? 'data' : 'media';
      await add(`${sub}/${String(i % 7)}/${kind}-${String(i).padStart(4, '0')}${EXT[k]}`, k, bytes);
      made += bytes;
    }
    budget -= made;
  }
  let dups = 0;
  const candidates = files.filter((f) => f.kind !== 'sparse' && f.bytes >= 64 * KiB && f.bytes <= 16 * MiB);
  for (let i = 0; dups < dupTarget && candidates.length; i++) {
    const src = r.pick(candidates);
    const rel = `copies/${i}-${path.basename(src.rel)}`;
    const data = await fs.readFile(path.join(dir, src.rel));
    if (i % 2 === 1) {
      // A near copy: a few bytes changed in the middle.
      const at = r.int(0, data.length - 64);
      data.fill(0x41, at, at + 32);
    }
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), data);
    await fs.utimes(path.join(dir, rel), FIXED_MTIME, FIXED_MTIME);
    files.push({ rel, kind: src.kind, bytes: data.length });
    dups += data.length;
  }
  // A few symlinks and an empty directory: every tool must keep them.
  await fs.mkdir(path.join(dir, 'empty'), { recursive: true });
  await fs.symlink('../large/dataset.dat', path.join(dir, 'copies', 'link-to-large'));
  await fs.symlink('logs', path.join(dir, 'logs-link'));
  const total = files.reduce((a, f) => a + f.bytes, 0);
  return finish(work, name, {
    name: 'mixed',
    dir,
    bytes: total,
    files: files.length,
    largeFile: 'large/dataset.dat',
    largeSize,
    kinds: Object.fromEntries(['log', 'csv', 'json', 'bin', 'rand', 'sparse', 'mix'].map((k) => [k, files.filter((f) => f.kind === k).reduce((a, f) => a + f.bytes, 0)])),
    editable: files.filter((f) => ['log', 'csv', 'json', 'bin'].includes(f.kind) && f.bytes >= 256 * KiB && !f.rel.startsWith('copies/')).map((f) => f.rel),
    list: files.map((f) => [f.rel, f.bytes]),
  });
}

/** A sparse file: `size` bytes, mostly holes, with data extents at 64 KiB-aligned places (~12 %). */
async function writeSparse(file, size, seed) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const r = rng(seed);
  const h = await fs.open(file, 'w');
  try {
    await h.truncate(size);
    const text = producer('log', `${seed}/t`);
    const bin = producer('bin', `${seed}/b`);
    const extents = Math.max(1, Math.round(size / (8 * MiB)));
    for (let i = 0; i < extents; i++) {
      const len = Math.min(size, r.int(64 * KiB, 1 * MiB));
      const at = Math.floor(r.int(0, Math.max(0, size - len)) / (64 * KiB)) * 64 * KiB;
      await h.write(i % 2 ? bin(len) : text(len), 0, len, at);
    }
  } finally {
    await h.close();
  }
  await fs.utimes(file, FIXED_MTIME, FIXED_MTIME);
}

// ---- versions -------------------------------------------------------------------------------------

/**
 * v1 = mixed; v2..v4 edits of the previous version. Unchanged files are hard links (cp -al), so a
 * version costs only its edits on disk; edited files are rewritten as new files.
 *   v2: shifting edits only — small inserts and deletes inside 20 files, 5 new small files
 *   v3: appends to 10 files, 10 files removed, 10 renamed, 20 new files
 *   v4: a mix — 10 shifting edits, 5 appends, a new 8 MiB file, 5 removed, 5 renamed
 * Each version records: edits (count), bytesAdded (new content: inserted + appended + new files),
 * bytesDeleted, and what was done.
 */
export async function versions(work, mixedSet, log = () => {}) {
  const name = `versions-${GEN}-${mixedSet.bytes}`;
  const have = await done(work, name);
  if (have) return have;
  const root = path.join(work, 'data', name);
  log(`generating versions v2..v4 of mixed in ${root}`);
  await fresh(root);
  const out = [{ version: 'v1', dir: mixedSet.dir, edits: 0, bytesAdded: mixedSet.bytes, bytesDeleted: 0, changes: 'the mixed data set' }];
  let prev = mixedSet.dir;
  let editable = [...mixedSet.editable];
  let others = mixedSet.list.map(([rel]) => rel).filter((rel) => !editable.includes(rel) && !rel.startsWith('large/'));
  const r = rng('versions');
  for (const v of ['v2', 'v3', 'v4']) {
    const dir = path.join(root, v);
    await runProcess('cp', ['-al', prev, dir]);
    const rec = { version: v, dir, edits: 0, bytesAdded: 0, bytesDeleted: 0, inserts: 0, deletes: 0, appends: 0, added: 0, removed: 0, renamed: 0 };
    const take = (arr, n) => {
      const picked = [];
      for (let i = 0; i < n && arr.length; i++) picked.push(arr.splice(r.int(0, arr.length - 1), 1)[0]);
      return picked;
    };
    const shiftEdits = async (n) => {
      for (const rel of take([...editable], n)) {
        const file = path.join(dir, rel);
        let data = await fs.readFile(file);
        const ops = r.int(1, 3);
        for (let k = 0; k < ops; k++) {
          const at = r.int(0, data.length - 1);
          const len = r.int(10, 200);
          if (r.chance(0.6)) {
            const ins = textBytes(r, len, 'log');
            data = Buffer.concat([data.subarray(0, at), ins, data.subarray(at)]);
            rec.inserts++;
            rec.bytesAdded += len;
          } else {
            const l = Math.min(len, data.length - at);
            data = Buffer.concat([data.subarray(0, at), data.subarray(at + l)]);
            rec.deletes++;
            rec.bytesDeleted += l;
          }
          rec.edits++;
        }
        await replaceFile(file, data);
      }
    };
    const appends = async (n) => {
      for (const rel of take([...editable], n)) {
        const file = path.join(dir, rel);
        const len = r.int(64 * KiB, 1 * MiB);
        const data = Buffer.concat([await fs.readFile(file), textBytes(r, len, 'log')]);
        await replaceFile(file, data);
        rec.appends++;
        rec.edits++;
        rec.bytesAdded += len;
      }
    };
    const newFiles = async (n, lo, hi, kind = 'json') => {
      for (let i = 0; i < n; i++) {
        const len = r.int(lo, hi);
        const rel = `new-${v}/f${i}${EXT[kind]}`;
        await writeChunked(path.join(dir, rel), len, producer(kind, `${v}/${rel}`));
        rec.added++;
        rec.edits++;
        rec.bytesAdded += len;
      }
    };
    const removes = async (n) => {
      for (const rel of take(others, n)) {
        await fs.rm(path.join(dir, rel), { force: true });
        rec.removed++;
        rec.edits++;
      }
    };
    const renames = async (n) => {
      for (const rel of take(others, n)) {
        const to = `renamed-${v}/${path.basename(rel)}`;
        await fs.mkdir(path.join(dir, path.dirname(to)), { recursive: true });
        await fs.rename(path.join(dir, rel), path.join(dir, to));
        others.push(to);
        rec.renamed++;
        rec.edits++;
      }
    };
    if (v === 'v2') {
      await shiftEdits(20);
      await newFiles(5, 1 * KiB, 16 * KiB);
      rec.changes = `${rec.inserts} inserts + ${rec.deletes} deletes (10–200 bytes, shifting offsets) in 20 files, 5 new small files`;
    } else if (v === 'v3') {
      await appends(10);
      await removes(10);
      await renames(10);
      await newFiles(20, 1 * KiB, 256 * KiB, 'log');
      rec.changes = '10 files appended (64 KiB–1 MiB each), 10 removed, 10 renamed, 20 new files';
    } else {
      await shiftEdits(10);
      await appends(5);
      await newFiles(1, 8 * MiB, 8 * MiB, 'rand');
      await removes(5);
      await renames(5);
      rec.changes = `${rec.inserts} inserts + ${rec.deletes} deletes in 10 files, 5 appends, one new 8 MiB file, 5 removed, 5 renamed`;
    }
    editable = editable.filter((rel) => existsSync(path.join(dir, rel)));
    others = others.filter((rel) => existsSync(path.join(dir, rel)));
    out.push(rec);
    prev = dir;
  }
  return finish(work, name, { name: 'versions', dir: root, versions: out });
}

async function replaceFile(file, data) {
  // A new inode: the previous version shares the old one through a hard link.
  const tmp = `${file}.tmp-edit`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

// ---- disk -----------------------------------------------------------------------------------------

/**
 * A disk-image-like file of `size` bytes (written in full, not sparse, like a `dd` image): 1 MiB
 * regions that are zero (62 %), metadata-like (inode tables: 256-byte records, half-empty blocks;
 * 10 %), text (10 %), structured binary (8 %) or incompressible (10 %); a superblock copy every
 * 128 MiB. v2: 256 scattered 4 KiB metadata blocks updated in place (a few bytes each) and one new
 * 16 MiB extent written into a free region; bytesChanged counts the bytes that really differ.
 */
export async function disk(work, size, log = () => {}) {
  const name = `disk-${GEN}-${size}`;
  const have = await done(work, name);
  if (have) return have;
  const dir = path.join(work, 'data', name);
  log(`generating disk (${fmtSize(size)}) in ${dir}`);
  await fresh(dir);
  const v1 = path.join(dir, 'v1', 'disk.img');
  const regions = Math.ceil(size / MiB);
  const r = rng(`disk/${size}`);
  const types = [];
  for (let i = 0; i < regions; i++) {
    const x = r.float();
    types.push(i % 128 === 0 ? 'super' : x < 0.62 ? 'zero' : x < 0.72 ? 'meta' : x < 0.82 ? 'text' : x < 0.9 ? 'bin' : 'rand');
  }
  const text = producer('log', 'disk/text');
  const bin = producer('bin', 'disk/bin');
  const rand = producer('rand', 'disk/rand');
  const zero = Buffer.alloc(MiB);
  const meta = (seed) => {
    const mr = rng(seed);
    const b = Buffer.alloc(MiB);
    for (let blk = 0; blk < 256; blk++) {
      if (mr.chance(0.5)) continue;
      for (let ino = 0; ino < 16; ino++) {
        const o = blk * 4096 + ino * 256;
        b.writeUInt32LE(0x81a4, o);
        b.writeUInt32LE(mr.int(0, 1e6), o + 4);
        b.writeUInt32LE(1_700_000_000 + mr.int(0, 1e7), o + 8);
        b.writeUInt32LE(1_700_000_000 + mr.int(0, 1e7), o + 12);
        for (let k = 0; k < 12; k++) b.writeUInt32LE(mr.int(0, regions * 256), o + 40 + k * 4);
      }
    }
    return b;
  };
  const superblock = () => {
    const b = Buffer.alloc(MiB);
    b.write('HEXZ-BENCH-FS superblock v1', 1024, 'latin1');
    for (let k = 0; k < 64; k++) b.writeUInt32LE(k * 7919, 1100 + k * 4);
    return b;
  };
  await fs.mkdir(path.dirname(v1), { recursive: true });
  const h = await fs.open(v1, 'w');
  try {
    for (let i = 0; i < regions; i++) {
      const n = Math.min(MiB, size - i * MiB);
      const t = types[i];
      const b = t === 'zero' ? zero : t === 'meta' ? meta(`disk/meta${i}`) : t === 'super' ? superblock() : t === 'text' ? text(MiB) : t === 'bin' ? bin(MiB) : rand(MiB);
      await h.write(b, 0, n, i * MiB);
    }
  } finally {
    await h.close();
  }
  await fs.utimes(v1, FIXED_MTIME, FIXED_MTIME);
  // v2: a copy with in-place updates.
  const v2 = path.join(dir, 'v2', 'disk.img');
  await fs.mkdir(path.dirname(v2), { recursive: true });
  await fs.copyFile(v1, v2);
  const h2 = await fs.open(v2, 'r+');
  let changed = 0;
  let edits = 0;
  try {
    const metaRegions = types.map((t, i) => (t === 'meta' ? i : -1)).filter((i) => i >= 0);
    const er = rng(`disk-v2/${size}`);
    for (let k = 0; k < 256 && metaRegions.length; k++) {
      const reg = er.pick(metaRegions);
      const blockAt = reg * MiB + er.int(0, 255) * 4096;
      const block = Buffer.alloc(4096);
      await h2.read(block, 0, 4096, blockAt);
      const before = Buffer.from(block);
      const ino = er.int(0, 15) * 256;
      block.writeUInt32LE(1_800_000_000 + er.int(0, 1e6), ino + 12);
      block.writeUInt32LE(er.int(0, 1e6), ino + 4);
      for (let i = 0; i < 4096; i++) if (block[i] !== before[i]) changed++;
      await h2.write(block, 0, 4096, blockAt);
      edits++;
    }
    const zeroRegions = types.map((t, i) => (t === 'zero' ? i : -1)).filter((i) => i >= 0);
    const extent = Math.min(16 * MiB, Math.floor(size / 16));
    let run = zeroRegions.length ? zeroRegions[Math.floor(zeroRegions.length / 2)] : 0;
    const ext = producer('mix', 'disk-v2/extent')(extent, 0);
    await h2.write(ext, 0, extent, run * MiB);
    for (let i = 0; i < extent; i++) if (ext[i] !== 0) changed++; // (the region was zero or close to it)
    edits++;
  } finally {
    await h2.close();
  }
  await fs.utimes(v2, FIXED_MTIME, FIXED_MTIME);
  return finish(work, name, {
    name: 'disk',
    dir,
    bytes: size,
    v1,
    v2,
    zeroShare: types.filter((t) => t === 'zero').length / regions,
    v2Edits: edits,
    v2BytesChanged: changed,
    v2Changes: `256 scattered 4 KiB metadata blocks updated in place (a few bytes each) + one new ${fmtSize(Math.min(16 * MiB, Math.floor(size / 16)))} extent`,
  });
}

// ---- small files ----------------------------------------------------------------------------------

export async function smallFiles(work, count, log = () => {}) {
  const name = `small-files-${GEN}-${count}`;
  const have = await done(work, name);
  if (have) return have;
  const dir = path.join(work, 'data', name);
  log(`generating small-files (${count} files) in ${dir}`);
  await fresh(dir);
  const bytes = writeSmallFiles(dir, count);
  return finish(work, name, { name: 'small-files', dir, bytes, files: count });
}

/** `count` files of 1–16 KiB in directories of 100 below `dir` (the same bytes for the same count); returns their size. */
function writeSmallFiles(dir, count) {
  const r = rng(`small/${count}`);
  let bytes = 0;
  const kinds = ['log', 'csv', 'json', 'log', 'csv', 'json', 'bin', 'bin', 'bin', 'rand'];
  // One producer per kind for the whole set (creating one per file costs more than the file).
  const producers = Object.fromEntries([...new Set(kinds)].map((k) => [k, producer(k, `small/${count}/${k}`)]));
  for (let i = 0; i < count; i++) {
    const d = path.join(dir, `d${String(Math.floor(i / 100)).padStart(4, '0')}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    const kind = kinds[i % kinds.length];
    const len = r.int(1 * KiB, 16 * KiB);
    const f = path.join(d, `f${String(i).padStart(6, '0')}${EXT[kind]}`);
    writeFileSync(f, producers[kind](len, 0));
    utimesSync(f, FIXED_MTIME, FIXED_MTIME);
    bytes += len;
  }
  return bytes;
}

// ---- workspace ------------------------------------------------------------------------------------

/**
 * The tree of the workspaces scenario at the sizes, one archive for its three bars:
 * `small/` holds `spec.files` small files (the small-files generator's bytes), `large.img` is
 * `spec.large` incompressible bytes (the file a 1-byte edit is committed from), and `filler/` holds
 * `spec.filler` more incompressible bytes in 1 GiB files so that the archive itself, not only its
 * logical size, reaches the size. Incompressible: AES-CTR of zeros, deterministic per seed.
 */
export async function workspaceTree(work, spec, log = () => {}) {
  const name = `workspace-${GEN}-${spec.files}-${spec.large}-${spec.filler}`;
  const have = await done(work, name);
  if (have) return have;
  const dir = path.join(work, 'data', name);
  log(`generating workspace (${spec.files} small files, ${fmtSize(spec.large)} file, ${fmtSize(spec.filler)} filler) in ${dir}`);
  await fresh(dir);
  const smallBytes = writeSmallFiles(path.join(dir, 'small'), spec.files);
  await writeChunked(path.join(dir, 'large.img'), spec.large, producer('rand', `workspace/large/${spec.large}`));
  let fillers = 0;
  for (let at = 0; at < spec.filler; at += GiB) {
    const n = Math.min(GiB, spec.filler - at);
    await writeChunked(path.join(dir, 'filler', `part-${String(fillers).padStart(3, '0')}.bin`), n, producer('rand', `workspace/filler/${fillers}`));
    fillers++;
  }
  return finish(work, name, {
    name: 'workspace',
    dir,
    bytes: smallBytes + spec.large + spec.filler,
    files: spec.files + 1 + fillers,
    smallDir: 'small',
    smallFiles: spec.files,
    largeFile: 'large.img',
    largeSize: spec.large,
    fillerBytes: spec.filler,
  });
}

// ---- real -----------------------------------------------------------------------------------------

/** Versions of one npm package, unpacked side by side (fetched once with `npm pack` into WORK/cache). */
export const NPM_PACKAGE = 'typescript';
export const NPM_VERSIONS = ['5.6.3', '5.7.3', '5.8.3', '5.9.3'];

/**
 * Real files: unpacked versions of the npm package `typescript` (fetched with `npm pack`, or taken from
 * the local npm cache) plus copies of /usr/lib/python3 and /usr/share/doc, up to `limit` bytes of the
 * system files. `mode` 'local' never touches the network (smoke runs): a few MiB of /usr/share/doc and
 * node_modules only. Returns { dir, bytes, files, sources: [...], npmVersions: [{version, dir}] }.
 */
export async function real(work, mode, limit, log = () => {}) {
  const name = `real-${GEN}-${mode}-${limit}`;
  const have = await done(work, name);
  if (have) return have;
  const dir = path.join(work, 'data', name);
  log(`collecting real files (${mode}) in ${dir}`);
  await fresh(dir);
  const sources = [];
  const npmVersions = [];
  if (mode !== 'local') {
    const cache = path.join(work, 'cache', 'npm');
    await fs.mkdir(cache, { recursive: true });
    for (const v of NPM_VERSIONS) {
      const tgz = path.join(cache, `${NPM_PACKAGE}-${v}.tgz`);
      if (!existsSync(tgz)) {
        const res = spawnSync('npm', ['pack', `${NPM_PACKAGE}@${v}`, '--pack-destination', cache, '--silent', '--prefer-offline'], { encoding: 'utf8', timeout: 120_000 });
        if (res.status !== 0 || !existsSync(tgz)) {
          log(`  npm pack ${NPM_PACKAGE}@${v} failed: ${(res.stderr || '').trim().split('\n').pop()}`);
          continue;
        }
      }
      const to = path.join(dir, 'npm', `${NPM_PACKAGE}-${v}`);
      await fs.mkdir(to, { recursive: true });
      const t = spawnSync('tar', ['-xzf', tgz, '-C', to, '--strip-components=1'], { encoding: 'utf8' });
      if (t.status === 0) npmVersions.push({ version: v, dir: to });
    }
    if (npmVersions.length) sources.push(`npm ${NPM_PACKAGE} ${npmVersions.map((x) => x.version).join(', ')} (unpacked tarballs, side by side)`);
  }
  const sys = mode === 'local' ? [['/usr/share/doc', 'doc']] : [['/usr/lib/python3', 'python3'], ['/usr/share/doc', 'doc']];
  let budget = limit;
  for (const [src, as] of sys) {
    if (!existsSync(src) || budget <= 0) continue;
    const copied = await copyLimited(src, path.join(dir, 'system', as), budget);
    budget -= copied;
    sources.push(`${src} (${fmtSize(copied)}${copied >= limit ? ', truncated' : ''})`);
  }
  if (mode === 'local') {
    const nm = path.resolve('node_modules');
    for (const pkg of ['commander', 'lru-cache', 'ignore']) {
      const src = path.join(nm, pkg);
      if (existsSync(src)) {
        await fs.mkdir(path.join(dir, 'node_modules'), { recursive: true });
        await runProcess('cp', ['-a', src, path.join(dir, 'node_modules', pkg)], { allowFail: true }).catch(() => {});
        sources.push(`node_modules/${pkg}`);
      }
    }
  }
  const { bytes, files } = await countTree(dir);
  return finish(work, name, { name: 'real', dir, bytes, files, sources, npmVersions });
}

/** Copy regular files, directories and symlinks of `src` until `limit` bytes of file data. */
async function copyLimited(src, dst, limit) {
  let copied = 0;
  const walk = async (s, d) => {
    await fs.mkdir(d, { recursive: true });
    const entries = (await fs.readdir(s, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (copied >= limit) return;
      const sp = path.join(s, e.name);
      const dp = path.join(d, e.name);
      try {
        if (e.isDirectory()) await walk(sp, dp);
        else if (e.isSymbolicLink()) await fs.symlink(await fs.readlink(sp), dp);
        else if (e.isFile()) {
          const st = await fs.stat(sp);
          await fs.copyFile(sp, dp);
          await fs.utimes(dp, st.atime, st.mtime);
          copied += st.size;
        }
      } catch {
        /* unreadable: skip */
      }
    }
  };
  await walk(src, dst);
  return copied;
}

async function countTree(dir) {
  let bytes = 0;
  let files = 0;
  const walk = async (d) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        bytes += (await fs.stat(p)).size;
        files++;
      }
    }
  };
  await walk(dir);
  return { bytes, files };
}

export function fmtSize(n) {
  if (n === null || n === undefined) return 'n/a';
  const a = Math.abs(n);
  if (a >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (a >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (a >= KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${n} B`;
}
