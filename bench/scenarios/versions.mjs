// Scenario 2 — versions: bytes stored (uploaded) for each new version. hexz pack --base (a thin delta of
// the previous version) vs casync (new chunks in its store + the new index), restic (repository growth),
// squashfs (no deltas: a whole new image) and the physical floor (new bytes really added).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MiB } from '../lib/common.mjs';
import { runProcess, runTimed, treeBytes } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { hexzPack, RESTIC_ENV, resticInit } from '../lib/tools.mjs';
import { fmtSize } from '../lib/datasets.mjs';

export const title = '2. Versions: bytes stored per new version (thin deltas)';

const DEFAULT_AVG_CHUNK = 64 * 1024;

/**
 * Pack a chain of versions with every tool. versions: [{ version, input, isFile, bytesAdded?, edits? }].
 * Returns Map tool → [{ version, bytes, chunkBytes?, wall }].
 */
async function chain(ctx, label, versions) {
  const out = await ctx.scratch(`versions/${label}`);
  const T = ctx.tools;
  const res = new Map();
  const put = (tool, v, rec) => {
    if (!res.has(tool)) res.set(tool, []);
    res.get(tool).push({ version: v.version, ...rec });
  };
  const fail = (tool, err) => {
    ctx.log(`  ${tool} FAILED: ${err.message}`);
    res.set(tool, { error: String(err.message).slice(0, 400) });
  };
  // hexz: v1 full, then each version a thin delta of the previous one.
  let prev = null;
  for (const v of versions) {
    const archive = path.join(out, `${v.version}.hxz`);
    const r = await hexzPack(v.input, archive, prev ? ['--base', prev] : []);
    put('hexz pack --base', v, { bytes: r.archiveBytes, chunkBytes: r.summary.storedBytes, wall: r.wall, newChunks: r.summary.newChunks });
    ctx.log(`  hexz ${v.version}: ${fmtSize(r.archiveBytes)} (chunk data ${fmtSize(r.summary.storedBytes)}) in ${r.wall.toFixed(2)} s`);
    prev = archive;
  }
  if (T.casync.available) {
    try {
      const store = path.join(out, 'store.castr');
      let before = 0;
      for (const v of versions) {
        const index = path.join(out, `${v.version}.${v.isFile ? 'caibx' : 'caidx'}`);
        const r = await runTimed('casync', ['make', '--compression=zstd', `--store=${store}`, index, v.input]);
        const after = await treeBytes(store);
        const idx = (await fs.stat(index)).size;
        put('casync (store growth + index)', v, { bytes: after - before + idx, chunkBytes: after - before, wall: r.wall });
        ctx.log(`  casync ${v.version}: +${fmtSize(after - before)} chunks + ${fmtSize(idx)} index`);
        before = after;
      }
    } catch (err) {
      fail('casync (store growth + index)', err);
    }
  }
  if (T.restic.available) {
    try {
      const repo = path.join(out, 'repo');
      const cache = path.join(out, 'restic-cache');
      await resticInit(repo, cache);
      let before = await treeBytes(repo);
      for (const v of versions) {
        // Each version is another directory: restic still deduplicates by content (without a parent
        // snapshot it re-reads every file, which costs time, not bytes).
        const r = await runTimed('restic', ['backup', '--repo', repo, '--cache-dir', cache, '-q', '--host', 'bench', v.input], { env: RESTIC_ENV });
        const after = await treeBytes(repo);
        put('restic (repo growth)', v, { bytes: after - before, wall: r.wall });
        ctx.log(`  restic ${v.version}: +${fmtSize(after - before)}`);
        before = after;
      }
    } catch (err) {
      fail('restic (repo growth)', err);
    }
  }
  if (T.mksquashfs.available) {
    try {
      for (const v of versions) {
        const img = path.join(out, `${v.version}.sqfs`);
        const r = await runTimed('mksquashfs', [v.input, img, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-quiet', '-no-progress']);
        put('squashfs (whole new image)', v, { bytes: (await fs.stat(img)).size, wall: r.wall });
        await fs.rm(img, { force: true });
      }
    } catch (err) {
      fail('squashfs (whole new image)', err);
    }
  }
  await fs.rm(out, { recursive: true, force: true });
  return res;
}

function versionTable(title, versions, res, notes) {
  const cols = versions.map((v) => ({ key: v.version, label: v.version === 'v1' ? 'v1 (full)' : v.version, unit: 'bytes', better: 'lower', headline: v.version !== 'v1' }));
  const t = table(title, cols, { reference: 'hexz pack --base', notes });
  for (const [tool, recs] of res) {
    if (!Array.isArray(recs)) {
      addRow(t, tool, {}, `failed: ${recs.error}`);
      continue;
    }
    addRow(t, tool, Object.fromEntries(recs.map((r) => [r.version, r.bytes])));
    if (tool === 'hexz pack --base') addRow(t, 'hexz: chunk data only', Object.fromEntries(recs.map((r) => [r.version, r.chunkBytes])));
    if (tool.startsWith('casync')) addRow(t, 'casync: chunk data only', Object.fromEntries(recs.map((r) => [r.version, r.chunkBytes])));
  }
  if (versions.some((v) => typeof v.bytesAdded === 'number')) {
    addRow(t, 'floor: new bytes really added', Object.fromEntries(versions.map((v) => [v.version, v.bytesAdded ?? null])));
  }
  return t;
}

export async function run(ctx) {
  const tables = [];
  const vs = await ctx.data.versions();
  ctx.log('versions: mixed v1..v4');
  const mixedVersions = vs.versions.map((v) => ({ version: v.version, input: v.dir, isFile: false, bytesAdded: v.bytesAdded, edits: v.edits }));
  const mres = await chain(ctx, 'mixed', mixedVersions);
  tables.push(
    versionTable(
      'mixed v1 → v4 (each version a delta of the previous one)',
      mixedVersions,
      mres,
      vs.versions.filter((v) => v.version !== 'v1').map((v) => `${v.version}: ${v.changes} (${v.edits} edits, ${fmtSize(v.bytesAdded)} added, ${fmtSize(v.bytesDeleted)} deleted)`),
    ),
  );

  const disk = await ctx.data.disk();
  ctx.log('versions: disk v1 → v2');
  const diskVersions = [
    { version: 'v1', input: disk.v1, isFile: true, bytesAdded: disk.bytes },
    { version: 'v2', input: disk.v2, isFile: true, bytesAdded: disk.v2BytesChanged, edits: disk.v2Edits },
  ];
  const dres = await chain(ctx, 'disk', diskVersions);
  tables.push(versionTable(`disk image v1 → v2 (${fmtSize(disk.bytes)})`, diskVersions, dres, [`v2: ${disk.v2Changes}; the floor is the number of bytes that really differ.`]));

  const real = await ctx.data.real();
  if (real.npmVersions?.length >= 2) {
    ctx.log('versions: real npm package versions');
    const realVersions = real.npmVersions.map((v, i) => ({ version: `v${i + 1}`, input: v.dir, isFile: false, label: v.version }));
    const rres = await chain(ctx, 'real', realVersions);
    tables.push(versionTable(`real: ${real.npmVersions.length} releases of the npm package typescript (${real.npmVersions.map((v) => v.version).join(' → ')})`, realVersions, rres, ['No floor: what really changed between two releases is not known byte by byte.']));
  }

  // DESIGN bars on the shifted-insert edit (mixed v2).
  const v2 = vs.versions.find((v) => v.version === 'v2');
  const hx = mres.get('hexz pack --base').find((r) => r.version === 'v2');
  const cas = mres.get('casync (store growth + index)');
  if (Array.isArray(cas)) {
    const c = cas.find((r) => r.version === 'v2');
    ctx.targets.push({
      id: 'delta-vs-casync',
      text: 'thin delta for a shifted-insert edit (mixed v2) ≤ casync new-chunk bytes',
      measured: `hexz ${fmtSize(hx.bytes)} (whole delta archive; chunk data ${fmtSize(hx.chunkBytes)}) vs casync new chunks ${fmtSize(c.chunkBytes)} (+ ${fmtSize(c.bytes - c.chunkBytes)} index)`,
      bar: '≤ 1.00×',
      met: hx.bytes <= c.chunkBytes,
      note: hx.bytes <= c.chunkBytes ? undefined : hx.chunkBytes <= c.chunkBytes ? 'chunk data alone is below casync: the delta\'s own index makes the difference' : undefined,
    });
  } else {
    ctx.targets.push({ id: 'delta-vs-casync', text: 'thin delta for a shifted-insert edit (mixed v2) ≤ casync new-chunk bytes', measured: null, met: null, note: cas?.error ? `casync failed: ${cas.error}` : 'casync did not run' });
  }
  const bound = 1.2 * v2.bytesAdded + v2.edits * DEFAULT_AVG_CHUNK;
  ctx.targets.push({
    id: 'delta-floor',
    text: 'thin delta (mixed v2) ≤ 1.2 × bytes changed + one chunk per edit',
    measured: `${fmtSize(hx.bytes)} (chunk data ${fmtSize(hx.chunkBytes)}); ${fmtSize(v2.bytesAdded)} changed, ${v2.edits} edits`,
    bar: `≤ ${fmtSize(bound)} (1.2 × ${fmtSize(v2.bytesAdded)} + ${v2.edits} × 64 KiB)`,
    met: hx.bytes <= bound,
  });
  return {
    tables,
    meaning: [
      'Each cell is the number of bytes a version adds to what is already stored: for hexz the size of the thin archive (`pack --base previous`: new chunks + its full index and file table, everything that is uploaded); for casync the growth of its chunk store plus the new .caidx/.caibx; for restic the growth of the repository (packs, index, snapshot); for squashfs a whole new image, since it has no deltas.',
      '"chunk data only" rows leave the index out (hexz: stored chunk bytes of the delta; casync: store growth).',
      'floor = content bytes really added (inserted + appended + new files; deletions add nothing) for the synthetic sets, the bytes that really differ for the disk image.',
      'Chunking is content-defined everywhere except squashfs: hexz 16/64/256 KiB FastCDC, casync 16/64/256 KiB buzhash, restic 512 KiB–8 MiB Rabin (its chunks are larger, so each edit costs more).',
    ],
  };
}
