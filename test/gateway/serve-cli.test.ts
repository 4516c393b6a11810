/**
 * `hexz serve` options as a user passes them on the command line: several `--auth-token-file` flags
 * (every file's tokens accepted), the comma-separated variable, and a token file that cannot be read
 * (a usage error naming the option, exit 2). The gateway runs as a child process; requests are real.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { hexz } from '../helpers/cli.js';
import { spawnServe, stopAllServes } from '../helpers/serve.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let alpha: string;
let beta: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-serve-cli-');
  root = path.join(tmp.dir, 'archives');
  await fs.mkdir(root);
  alpha = path.join(tmp.dir, 'alpha.tokens');
  beta = path.join(tmp.dir, 'beta.tokens');
  await fs.writeFile(alpha, 'alpha-token\n');
  await fs.writeFile(beta, '# team b\nbeta-token\n');
});
afterEach(stopAllServes);
afterAll(() => tmp.cleanup());

/** Start `hexz serve ARGS` on a free port; resolves with its URL once it listens. */
async function serve(args: string[], env: Record<string, string> = {}): Promise<string> {
  return (await spawnServe(['--storage', root, '--port', '0', ...args], { env })).url;
}

async function status(url: string, token?: string): Promise<number> {
  return (await get(`${url}/v1/archives`, token ? { authorization: `Bearer ${token}` } : {})).status;
}

describe('hexz serve --auth-token-file', () => {
  it('is repeatable: the tokens of every file are accepted', async () => {
    const url = await serve(['--auth-token-file', alpha, '--auth-token-file', beta]);
    expect(await status(url)).toBe(401);
    expect(await status(url, 'alpha-token')).toBe(200);
    expect(await status(url, 'beta-token')).toBe(200);
    expect(await status(url, 'gamma-token')).toBe(401);
  });

  it('HEXZ_AUTH_TOKEN_FILE takes several files, comma-separated; a flag replaces it', async () => {
    const url = await serve([], { HEXZ_AUTH_TOKEN_FILE: `${alpha},${beta}` });
    expect(await status(url, 'alpha-token')).toBe(200);
    expect(await status(url, 'beta-token')).toBe(200);
    const flagged = await serve(['--auth-token-file', beta], { HEXZ_AUTH_TOKEN_FILE: alpha });
    expect(await status(flagged, 'beta-token')).toBe(200);
    expect(await status(flagged, 'alpha-token')).toBe(401);
  });

  it('a token file that does not exist is a usage error naming the option (exit 2)', async () => {
    const missing = path.join(tmp.dir, 'nope.tokens');
    const r = await hexz(['serve', '--storage', root, '--port', '0', '--auth-token-file', alpha, '--auth-token-file', missing]);
    expect(r.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--auth-token-file');
    expect(r.stderr).toContain(missing);
    expect(r.stderr).not.toMatch(/archive/i);
  });
});
