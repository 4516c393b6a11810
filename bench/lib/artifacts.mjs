// Archives, images, stores and repositories of a data set that several scenarios read (extract, random
// reads, gateway): built once per harness run, untimed, under WORK/artifacts.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { runProcess } from './measure.mjs';
import { hexz, hexzPack, RESTIC_ENV, resticInit } from './tools.mjs';

const memo = new Map();

export function artifactsDir(ctx) {
  return path.join(ctx.work, 'artifacts');
}

/** Remove every artifact (start and end of a harness run). */
export async function clearArtifacts(ctx) {
  memo.clear();
  await fs.rm(artifactsDir(ctx), { recursive: true, force: true });
}

/** A hexz key file (mode 0600) for encrypted archives. */
export async function keyFile(ctx) {
  const f = path.join(artifactsDir(ctx), 'bench.key');
  if (!existsSync(f)) {
    await fs.mkdir(path.dirname(f), { recursive: true });
    await hexz(['keygen', f]);
    await fs.chmod(f, 0o600);
  }
  return f;
}

/**
 * Build (once) the output of `tool` for data set `name` whose input is `input` (a directory, or a file
 * when `isFile`). tool: hexz | hexz-lz4 | hexz-enc | squashfs | casync | restic | tarzst.
 */
export function artifact(ctx, name, tool, input, isFile = false) {
  const key = `${name}/${tool}`;
  if (!memo.has(key)) memo.set(key, build(ctx, name, tool, input, isFile));
  return memo.get(key);
}

async function build(ctx, name, tool, input, isFile) {
  const dir = path.join(artifactsDir(ctx), name, tool);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  ctx.log(`  building ${tool} artifact of ${name}`);
  switch (tool) {
    case 'hexz':
    case 'hexz-lz4': {
      const archive = path.join(dir, `${name}.hxz`);
      const r = await hexzPack(input, archive, tool === 'hexz-lz4' ? ['-c', 'lz4'] : []);
      return { archive, summary: r.summary, dir };
    }
    case 'hexz-enc': {
      const key = await keyFile(ctx);
      const archive = path.join(dir, `${name}.hxz`);
      const r = await hexzPack(input, archive, ['--encrypt'], { global: ['--key-file', key] });
      return { archive, key, summary: r.summary, dir };
    }
    case 'squashfs': {
      const image = path.join(dir, `${name}.sqfs`);
      await runProcess('mksquashfs', [input, image, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-quiet', '-no-progress']);
      return { image, dir };
    }
    case 'casync': {
      const store = path.join(dir, 'store.castr');
      const index = path.join(dir, isFile ? `${name}.caibx` : `${name}.caidx`);
      await runProcess('casync', ['make', '--compression=zstd', `--store=${store}`, index, input]);
      return { store, index, dir };
    }
    case 'restic': {
      const repo = path.join(dir, 'repo');
      const cache = path.join(dir, 'cache');
      await resticInit(repo, cache);
      await runProcess('restic', ['backup', '--repo', repo, '--cache-dir', cache, '-q', input], { env: RESTIC_ENV });
      return { repo, cache, dir, input };
    }
    case 'tarzst': {
      const file = path.join(dir, `${name}.tar.zst`);
      if (isFile) await runProcess('zstd', ['-3', '-T0', '-q', '-f', input, '-o', file]);
      else await runProcess('bash', ['-c', 'set -o pipefail; tar -C "$1" -cf - . | zstd -3 -T0 -q -o "$2"', 'tarzst', input, file]);
      return { file, dir };
    }
    default:
      throw new Error(`unknown artifact tool ${tool}`);
  }
}
