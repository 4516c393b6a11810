#!/usr/bin/env node
// `make bench` → node bench/run.mjs $(BENCH_ARGS). See bench/README.md.
//
//   --scenarios LIST   comma-separated: pack,versions,extract,random,gateway,micro,encryption,workspaces (default all)
//   --size PRESET|F    smoke | quick | default | full (the issue's sizes) | a scale factor of full (0.25)
//   --quick            = --size quick --runs 1
//   --smoke            tiny data, 1 run, peers optional; results go to WORK/results-smoke; exits non-zero
//                      when the harness breaks
//   --runs N           runs per figure (median); default 3 (1 for smoke/quick)
//   --duration S       seconds of each time-based measurement (fio, wrk, library random reads)
//   --work DIR         scratch folder for data sets and outputs (default bench/work)
//   --out DIR          where latest.md / latest.json go (default bench/results)
//   --no-install       do not run bench/install.sh
//   --peers LIST       peers to compare with: all, none, or some of squashfs,casync,restic,zstd,nginx
//                      (default all; smoke: all but restic, whose repository set-up alone takes seconds)
//   --keep             keep the per-scenario outputs (archives, stores, extracted trees)
//   --no-readme        do not refresh the results section of bench/README.md (a complete run into
//                      bench/results does by default)
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as datasets from './lib/datasets.mjs';
import { canDropCaches, dropCaches } from './lib/measure.mjs';
import { clearArtifacts } from './lib/artifacts.mjs';
import { installSignalHandlers, runCleanups } from './lib/cleanup.mjs';
import { updateReadme, writeResults } from './lib/report.mjs';
import { detectTools, REPO } from './lib/tools.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const GiB = 1 << 30;

const PEERS = ['squashfs', 'casync', 'restic', 'zstd', 'nginx'];
/** Tools of each peer (fio, wrk and GNU time are measuring instruments, always used when present). */
const PEER_TOOLS = { squashfs: ['mksquashfs', 'unsquashfs', 'squashfuse'], casync: ['casync'], restic: ['restic'], zstd: ['zstd', 'lz4'], nginx: ['nginx'] };
const ALL = ['pack', 'versions', 'extract', 'random', 'gateway', 'micro', 'encryption', 'workspaces'];

/**
 * The workspaces scenario's own tree at the issue's sizes (100,000 files, a 4 GiB file, an archive of
 * 10 GiB or more: 10.5 GiB of incompressible bytes). The smaller presets have none: that scenario
 * then runs on the disk image and the small files (a default `make bench` stays ~13 min).
 */
const FULL_WORKSPACE = { files: 100000, large: 4 * GiB, filler: 6.5 * GiB };

/** Data set sizes per preset. `full` is what the issue asks for. */
const PRESETS = {
  smoke: { mixed: 12 * MiB, disk: 16 * MiB, small: 300, realMode: 'local', realLimit: 3 * MiB, duration: 1, runs: 1, micro: 4 * MiB, gatewayCache: 64 * MiB },
  quick: { mixed: 128 * MiB, disk: 256 * MiB, small: 5000, realMode: 'full', realLimit: 48 * MiB, duration: 3, runs: 1, micro: 32 * MiB, gatewayCache: 128 * MiB },
  default: { mixed: 512 * MiB, disk: 1 * GiB, small: 50000, realMode: 'full', realLimit: 160 * MiB, duration: 5, runs: 3, micro: 64 * MiB, gatewayCache: 256 * MiB },
  full: { mixed: 1 * GiB, disk: 2 * GiB, small: 50000, realMode: 'full', realLimit: 512 * MiB, duration: 10, runs: 3, micro: 128 * MiB, gatewayCache: 256 * MiB, workspace: FULL_WORKSPACE },
};

function parseArgs(argv) {
  const o = { readme: true, peers: null, scenarios: ALL, size: 'default', runs: null, duration: null, work: path.join(HERE, 'work'), out: null, install: true, keep: false, smoke: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const name = a.split('=')[0];
    if (name === '--scenarios') o.scenarios = val().split(',').map((s) => s.trim()).filter(Boolean);
    else if (name === '--size') o.size = val();
    else if (name === '--runs') o.runs = Number(val());
    else if (name === '--duration') o.duration = Number(val());
    else if (name === '--work') o.work = path.resolve(val());
    else if (name === '--out') o.out = path.resolve(val());
    else if (name === '--quick') {
      o.size = 'quick';
      o.runs ??= 1;
    } else if (name === '--smoke') {
      o.smoke = true;
      o.size = 'smoke';
      o.install = false;
    } else if (name === '--no-install') o.install = false;
    else if (name === '--peers') o.peers = val();
    else if (name === '--no-readme') o.readme = false;
    else if (name === '--keep') o.keep = true;
    else if (name === '--help' || name === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 18).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see --help)`);
  }
  o.peers ??= o.smoke ? PEERS.filter((p) => p !== 'restic').join(',') : 'all';
  o.peerList = o.peers === 'all' ? PEERS : o.peers === 'none' ? [] : o.peers.split(',').map((x) => x.trim());
  for (const p of o.peerList) if (!PEERS.includes(p)) throw new Error(`unknown peer ${p} (known: ${PEERS.join(', ')})`);
  for (const s of o.scenarios) if (!ALL.includes(s)) throw new Error(`unknown scenario ${s} (known: ${ALL.join(', ')})`);
  let preset;
  if (PRESETS[o.size]) preset = { ...PRESETS[o.size] };
  else if (Number(o.size) > 0) {
    const f = Number(o.size);
    const full = PRESETS.full;
    preset = {
      ...full,
      mixed: Math.max(8 * MiB, Math.round((full.mixed * f) / MiB) * MiB),
      disk: Math.max(16 * MiB, Math.round((full.disk * f) / MiB) * MiB),
      small: Math.max(100, Math.round(full.small * f)),
      realLimit: Math.max(2 * MiB, Math.round(full.realLimit * f)),
      micro: Math.max(4 * MiB, Math.min(full.micro, Math.round((full.micro * f) / MiB) * MiB)),
      workspace: {
        files: Math.max(100, Math.round(FULL_WORKSPACE.files * f)),
        large: Math.max(64 * MiB, Math.round((FULL_WORKSPACE.large * f) / MiB) * MiB),
        filler: Math.round((FULL_WORKSPACE.filler * f) / MiB) * MiB,
      },
    };
  } else throw new Error(`--size: expected smoke, quick, default, full or a positive factor, got ${o.size}`);
  o.preset = preset;
  o.runs ??= preset.runs;
  o.duration ??= preset.duration;
  o.out ??= o.smoke ? path.join(o.work, 'results-smoke') : path.join(HERE, 'results');
  return o;
}

function machine() {
  const cpus = os.cpus();
  let os_ = `${os.type()} ${os.release()}`;
  try {
    const rel = readFileSync('/etc/os-release', 'utf8').match(/PRETTY_NAME="([^"]+)"/);
    if (rel) os_ = `${rel[1]}, kernel ${os.release()}`;
  } catch {
    /* keep uname */
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown CPU',
    cores: cpus.length,
    memBytes: os.totalmem(),
    os: os_,
    node: process.versions.node,
    loadStart: os.loadavg().map((x) => x.toFixed(2)),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  installSignalHandlers();
  const started = new Date();
  const log = (...a) => console.error(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s]`, ...a);
  const notes = [];

  if (opts.install) {
    log('checking peer tools (bench/install.sh)');
    const r = spawnSync('bash', [path.join(HERE, 'install.sh')], { encoding: 'utf8' });
    for (const line of (r.stdout || '').split('\n').filter(Boolean)) {
      if (!line.startsWith('ok ')) log(`  ${line}`);
      if (line.startsWith('unavailable')) notes.push(`Debian package ${line.replace('unavailable ', '')} could not be installed: its rows are missing.`);
    }
  }
  const tools = detectTools();
  for (const p of PEERS) {
    if (opts.peerList.includes(p)) continue;
    for (const t of PEER_TOOLS[p]) if (tools[t]) tools[t] = { ...tools[t], available: false, note: 'not selected (--peers)' };
  }
  if (!tools.hexz.available) throw new Error(`hexz is not built (${tools.hexz.note}); run \`make build\` or \`npx tsc -p tsconfig.json\``);
  for (const [k, v] of Object.entries(tools)) if (!v.available) notes.push(`${k} is not available${v.note ? ` (${v.note})` : ''}: its rows are missing${opts.smoke ? ' (smoke run: peers are optional)' : ''}.`);
  // Smoke runs never drop caches: they check the harness, not the numbers, and may run beside tests.
  const canDrop = !opts.smoke && canDropCaches();
  if (opts.smoke) notes.push('Smoke run: tiny data, one run, page caches not dropped — the numbers mean nothing.');
  else if (!canDrop) notes.push('Page caches could not be dropped (not root): cold figures were measured with warm caches.');

  await fs.mkdir(opts.work, { recursive: true });
  const m = machine();
  log(`machine: ${m.cpu}, ${m.cores} cores, ${(m.memBytes / GiB).toFixed(1)} GiB; preset ${opts.size}; runs ${opts.runs}; scenarios ${opts.scenarios.join(',')}`);

  // Data sets are generated on first use and reused across runs (WORK/data/*.json manifests).
  const memo = new Map();
  const once = (key, fn) => () => {
    if (!memo.has(key)) memo.set(key, fn());
    return memo.get(key);
  };
  const P = opts.preset;
  const data = {
    mixed: once('mixed', () => datasets.mixed(opts.work, P.mixed, log)),
    versions: once('versions', async () => datasets.versions(opts.work, await data.mixed(), log)),
    disk: once('disk', () => datasets.disk(opts.work, P.disk, log)),
    small: once('small', () => datasets.smallFiles(opts.work, P.small, log)),
    real: once('real', () => datasets.real(opts.work, P.realMode, P.realLimit, log)),
    workspace: once('workspace', () => (P.workspace ? datasets.workspaceTree(opts.work, P.workspace, log) : null)),
  };
  const used = new Set();
  const tracked = Object.fromEntries(
    Object.entries(data).map(([k, fn]) => [
      k,
      async () => {
        used.add(k);
        return fn();
      },
    ]),
  );

  const ctx = {
    opts,
    work: opts.work,
    runs: opts.runs,
    duration: opts.duration,
    smoke: opts.smoke,
    preset: P,
    tools,
    data: tracked,
    log,
    canDrop,
    dropCaches: () => (canDrop ? dropCaches() : false),
    /** A fresh scratch directory for one scenario's outputs. */
    async scratch(name) {
      const d = path.join(opts.work, 'runs', name);
      await fs.rm(d, { recursive: true, force: true });
      await fs.mkdir(d, { recursive: true });
      return d;
    },
    targets: [],
  };

  await clearArtifacts(ctx);
  const scenarios = [];
  let failed = false;
  for (const id of opts.scenarios) {
    const mod = await import(`./scenarios/${id}.mjs`);
    log(`== scenario ${id}: ${mod.title}`);
    const t0 = Date.now();
    let res;
    try {
      res = await mod.run(ctx);
    } catch (err) {
      failed = true;
      log(`scenario ${id} failed: ${err.stack || err}`);
      res = { error: String(err.message || err) };
    } finally {
      await runCleanups();
    }
    scenarios.push({ id, title: mod.title, seconds: (Date.now() - t0) / 1000, ...res });
    log(`== scenario ${id} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (!opts.keep) await fs.rm(path.join(opts.work, 'runs', id), { recursive: true, force: true });
  }

  if (!opts.keep) await clearArtifacts(ctx);
  const descriptions = [];
  for (const k of ['mixed', 'versions', 'disk', 'small', 'real', 'workspace']) {
    if (!used.has(k)) continue;
    const d = await data[k]();
    if (!d) continue;
    descriptions.push({ name: d.name, description: describe(d), manifest: summaryOf(d) });
  }

  const finished = new Date();
  m.loadEnd = os.loadavg().map((x) => x.toFixed(2));
  const results = {
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: (finished - started) / 1000,
    argv: process.argv.slice(2),
    machine: m,
    options: { size: opts.size, peers: opts.peerList, preset: P, runs: opts.runs, duration: opts.duration, scenarios: opts.scenarios, dropCaches: canDrop, smoke: opts.smoke },
    tools: Object.fromEntries(Object.entries(tools).filter(([k]) => k !== 'time')),
    notes,
    datasets: descriptions,
    targets: ctx.targets,
    scenarios,
  };
  const files = await writeResults(opts.out, results);
  log(`wrote ${path.relative(process.cwd(), files.md)} and ${path.relative(process.cwd(), files.json)} (${(results.seconds / 60).toFixed(1)} min)`);
  // A run of every scenario into the default results folder also refreshes bench/README.md.
  const complete = ALL.every((s) => opts.scenarios.includes(s));
  if (opts.readme && !opts.smoke && complete && path.resolve(opts.out) === path.join(HERE, 'results')) {
    if (await updateReadme(path.join(HERE, 'README.md'), results)) log('updated the results section of bench/README.md');
  }
  for (const t of ctx.targets) log(`target: ${t.met === true ? 'MET    ' : t.met === false ? 'NOT MET' : 'n/a    '} ${t.text}: ${t.measured ?? '–'}`);
  if (failed) {
    log('some scenarios failed (see above)');
    process.exitCode = 1;
  }
}

function describe(d) {
  const S = datasets.fmtSize;
  if (d.name === 'mixed') {
    const k = d.kinds;
    return `${S(d.bytes)} in ${d.files.toLocaleString('en-US')} files (${d.dir.replace(REPO + '/', '')}): text ${S(k.log + k.csv + k.json)} (log/CSV/JSON lines), structured binary ${S(k.bin)}, incompressible "already compressed" ${S(k.rand)}, sparse ${S(k.sparse)} (apparent size), one large mixed file ${d.largeFile} of ${S(d.largeSize)}, ~7 % exact or near duplicates, symlinks and an empty directory.`;
  }
  if (d.name === 'versions') return d.versions.map((v) => `${v.version}: ${v.changes}${v.version === 'v1' ? '' : ` — ${v.edits} edits, ${S(v.bytesAdded)} of new content, ${S(v.bytesDeleted)} deleted`}`).join('; ');
  if (d.name === 'disk') return `one ${S(d.bytes)} disk image (written in full, ${(d.zeroShare * 100).toFixed(0)} % zero 1 MiB regions, the rest inode-table-like, text, binary and incompressible blocks); v2: ${d.v2Changes} — ${S(d.v2BytesChanged)} of bytes really differ, ${d.v2Edits} edits.`;
  if (d.name === 'small-files') return `${d.files.toLocaleString('en-US')} files of 1–16 KiB (${S(d.bytes)}) in directories of 100: text 60 %, structured binary 30 %, incompressible 10 %.`;
  if (d.name === 'workspace') return `${d.files.toLocaleString('en-US')} files (${S(d.bytes)}): ${d.smallFiles.toLocaleString('en-US')} small files as in small-files below ${d.smallDir}/, one ${S(d.largeSize)} incompressible file ${d.largeFile}, and ${S(d.fillerBytes)} of incompressible filler in 1 GiB files, so that the archive itself is as large as its content.`;
  if (d.name === 'real') return `${S(d.bytes)} in ${d.files.toLocaleString('en-US')} real files: ${d.sources.join('; ')}.`;
  return '';
}

function summaryOf(d) {
  const { list, editable, ...rest } = d;
  return rest;
}

main().catch((err) => {
  console.error(`[bench] fatal: ${err.stack || err}`);
  process.exit(2);
});
