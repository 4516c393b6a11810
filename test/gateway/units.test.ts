/**
 * The gateway's small pure parts: URL parsing of nested archive names, base confinement to the
 * storage root, key-file lookup by name prefix, configuration precedence and validation.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveConfig, DEFAULT_PORT, DEFAULT_HOST } from '@hexz/src/gateway/config.js';
import { loadServeConfig } from '@hexz/src/cli/serve-config.js';
import { createKeyResolver, keyNamesFor } from '@hexz/src/gateway/keys.js';
import { nameOfKey, parseArchiveUrl, viewOfUrl } from '@hexz/src/gateway/names.js';
import { keyUnderRoot } from '@hexz/src/gateway/containment.js';
import { contentTypeOf } from '@hexz/src/gateway/content-type.js';
import { codeOfSync } from '../helpers/errors.js';
import { makeTempDir } from '../helpers/tmp.js';


describe('archive URLs', () => {
  it.each([
    ['/v1/archives/demo', { name: 'demo', view: 'info', path: '' }],
    ['/v1/archives/demo/', { name: 'demo', view: 'info', path: '' }],
    ['/v1/archives/team/ds/v2', { name: 'team/ds/v2', view: 'info', path: '' }],
    ['/v1/archives/team/ds/v2/files/a/b.csv?download=1', { name: 'team/ds/v2', view: 'files', path: 'a/b.csv' }],
    ['/v1/archives/demo/files/files/tree/x', { name: 'demo', view: 'files', path: 'files/tree/x' }],
    ['/v1/archives/demo/tree', { name: 'demo', view: 'tree', path: '' }],
    ['/v1/archives/demo/tree/', { name: 'demo', view: 'tree', path: '' }],
    ['/v1/archives/a/b/tree/docs/', { name: 'a/b', view: 'tree', path: 'docs' }],
    ['/v1/archives/img/disk', { name: 'img', view: 'disk', path: '' }],
    ['/v1/archives/a/disk/b', { name: 'a/disk/b', view: 'info', path: '' }],
    ['/v1/archives/caf%C3%A9/files/na%20me.txt', { name: 'café', view: 'files', path: 'na me.txt' }],
  ])('%s', (url, want) => {
    expect(parseArchiveUrl(url)).toEqual(want);
    expect(viewOfUrl(url)).toBe(want.view);
  });

  it.each([
    ['/v1/archives/a%2Fb/files/x', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/x%2F..%2Fy', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/x%2fy', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/x%00', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/../../etc/passwd', 'UNSAFE_PATH'],
    ['/v1/archives/../files/x', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/%2e%2e/x', 'UNSAFE_PATH'],
    ['/v1/archives/a//b/files/x', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/x//y', 'UNSAFE_PATH'],
    ['/v1/archives/a/files/%E0%A4%A', 'UNSAFE_PATH'],
    ['/v1/archives/.hidden/files/x', 'UNSAFE_PATH'],
    ['/v1/archives/', 'UNSAFE_PATH'],
  ])('refuses %s', (url, code) => {
    expect(codeOfSync(() => parseArchiveUrl(url))).toBe(code);
  });

  it('names of storage keys', () => {
    expect(nameOfKey('demo.hxz')).toBe('demo');
    expect(nameOfKey('team/ds/v2.hxz')).toBe('team/ds/v2');
    expect(nameOfKey('notes.txt')).toBeUndefined();
    expect(nameOfKey('.hxz')).toBeUndefined();
    expect(nameOfKey('x/files/y.hxz')).toBeUndefined(); // reserved segment: not addressable
    expect(nameOfKey('x/disk.hxz')).toBeUndefined();
  });
});

describe('bases confined to the storage root', () => {
  it.each([
    ['file:///srv/a/', 'file:///srv/a/v1.hxz', 'v1.hxz'],
    ['file:///srv/a/', 'file:///srv/a/team/v1.hxz', 'team/v1.hxz'],
    ['file:///srv/a%20b/', 'file:///srv/a b/v1.hxz', 'v1.hxz'],
    ['file:///srv/a/', 'file:///srv/a/x%20y.hxz', 'x y.hxz'],
    ['file:///srv/a/', 'file:///srv/ab/v1.hxz', undefined],
    ['file:///srv/a/', 'file:///etc/v1.hxz', undefined],
    ['file:///srv/a/', 'file:///srv/a/x%2F..%2F..%2Fetc.hxz', undefined],
    ['file:///srv/a/', 'https://evil.example/v1.hxz', undefined],
    ['s3://bucket/p/', 's3://bucket/p/ds/v1.hxz', 'ds/v1.hxz'],
    ['s3://bucket/p/', 's3://other/p/ds/v1.hxz', undefined],
    ['s3://bucket/p/', 's3://bucket/q/v1.hxz', undefined],
    ['s3://bucket/', 's3://bucket/v1.hxz', 'v1.hxz'],
  ])('%s + %s', (root, url, want) => {
    expect(keyUnderRoot(root, url)).toBe(want);
  });
});

describe('key directory', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-keys-');
    const k = (n: number) => `${n.toString(16).padStart(2, '0').repeat(32)}\n`;
    await fs.mkdir(path.join(tmp.dir, 'keys/team-a'), { recursive: true });
    await fs.writeFile(path.join(tmp.dir, 'keys/default.key'), k(1), { mode: 0o600 });
    await fs.writeFile(path.join(tmp.dir, 'keys/team-a.key'), k(2), { mode: 0o600 });
    await fs.writeFile(path.join(tmp.dir, 'keys/team-a/ds.key'), k(3), { mode: 0o600 });
    await fs.writeFile(path.join(tmp.dir, 'keys/team-b.passphrase'), 'open sesame\n', { mode: 0o600 });
  });
  afterAll(() => tmp.cleanup());

  it('candidate names, most specific first', () => {
    expect(keyNamesFor('team-a/ds/v2')).toEqual(['team-a/ds/v2', 'team-a/ds', 'team-a', 'default']);
  });

  it('longest prefix wins; default covers the rest; passphrases too', async () => {
    const keys = await createKeyResolver({ keyDir: path.join(tmp.dir, 'keys') });
    const first = async (name: string) => {
      const k = await keys(name);
      return k?.kind === 'key' ? k.key[0] : k?.kind === 'passphrase' ? k.passphrase : undefined;
    };
    expect(await first('team-a/ds/v2')).toBe(3);
    expect(await first('team-a/other')).toBe(2);
    expect(await first('team-a')).toBe(2);
    expect(await first('team-ab')).toBe(1); // prefixes stop at "/" boundaries
    expect(await first('team-b/x')).toBe('open sesame');
    expect(await first('elsewhere')).toBe(1);
  });

  it('a key file readable by others is refused at start', async () => {
    const dir = path.join(tmp.dir, 'loose');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'x.key'), '00'.repeat(32), { mode: 0o644 });
    await fs.chmod(path.join(dir, 'x.key'), 0o644);
    await expect(createKeyResolver({ keyDir: dir })).rejects.toMatchObject({ code: 'PERMISSION' });
  });
});

describe('configuration', () => {
  it('defaults', () => {
    const c = serveConfig({});
    expect(c.port).toBe(DEFAULT_PORT);
    expect(c.host).toBe(DEFAULT_HOST);
    expect(c.storage).toBe('./archives');
    expect(c.maxRanges).toBe(32);
    expect(c.maxPageSize).toBe(1000);
  });

  it('flags beat env beat the config file', async () => {
    const tmp = await makeTempDir('hexz-cfg-');
    try {
      const file = path.join(tmp.dir, 'gw.json');
      await fs.writeFile(file, JSON.stringify({ port: 9001, host: '0.0.0.0', storage: 's3://b/p', maxRanges: 7, corsOrigins: ['https://a.example'], cacheSize: '64M' }));
      const c = await loadServeConfig({ config: file, port: '9003' }, { HEXZ_PORT: '9002', HEXZ_HOST: '::1', HEXZ_MAX_RANGES: '5' });
      expect(c.port).toBe(9003);
      expect(c.host).toBe('::1');
      expect(c.storage).toBe('s3://b/p');
      expect(c.maxRanges).toBe(5);
      expect(c.corsOrigins).toEqual(['https://a.example']);
      expect(c.cacheBytes).toBe(64 * 1024 * 1024);
      const env = await loadServeConfig({}, { HEXZ_CONFIG: file, HEXZ_CORS_ORIGINS: 'https://x.example, https://y.example' });
      expect(env.port).toBe(9001);
      expect(env.corsOrigins).toEqual(['https://x.example', 'https://y.example']);
      await fs.writeFile(file, JSON.stringify({ prot: 1 }));
      await expect(loadServeConfig({ config: file }, {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await fs.writeFile(file, JSON.stringify({ port: '80' }));
      await expect(loadServeConfig({ config: file }, {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await tmp.cleanup();
    }
  });

  it('auth token files: every --auth-token-file flag, else HEXZ_AUTH_TOKEN_FILE (comma-separated), else the config file', async () => {
    const tmp = await makeTempDir('hexz-cfg-');
    try {
      const file = path.join(tmp.dir, 'gw.json');
      await fs.writeFile(file, JSON.stringify({ authTokenFiles: ['/etc/c1', '/etc/c2'] }));
      const env = { HEXZ_CONFIG: file, HEXZ_AUTH_TOKEN_FILE: '/etc/e1, /etc/e2' };
      expect((await loadServeConfig({ authTokenFile: ['/etc/f1', '/etc/f2'] }, env)).authTokenFiles).toEqual(['/etc/f1', '/etc/f2']);
      expect((await loadServeConfig({}, env)).authTokenFiles).toEqual(['/etc/e1', '/etc/e2']);
      expect((await loadServeConfig({}, { HEXZ_CONFIG: file })).authTokenFiles).toEqual(['/etc/c1', '/etc/c2']);
      expect((await loadServeConfig({}, {})).authTokenFiles).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });

  it.each([
    [{ port: 70000 }],
    [{ port: -1 }],
    [{ maxRanges: 0 }],
    [{ defaultPageSize: 2000, maxPageSize: 1000 }],
    [{ corsOrigins: ['https://a.example/path'] }],
    [{ logLevel: 'loud' as never }],
    [{ cacheBytes: 1000 }],
  ])('refuses %j', (input) => {
    expect(codeOfSync(() => serveConfig(input))).toBe('INVALID_ARGUMENT');
  });

  it('invalid env values name the variable', async () => {
    await expect(loadServeConfig({}, { HEXZ_PORT: 'eighty' })).rejects.toThrow(/--port/);
    await expect(loadServeConfig({}, { HEXZ_ARCHIVE_TTL_MS: '-5' })).rejects.toThrow(/HEXZ_ARCHIVE_TTL_MS/);
  });
});

describe('content types', () => {
  it.each([
    ['a/b.csv', 'text/csv; charset=utf-8'],
    ['X.JSON', 'application/json'],
    ['img.png', 'image/png'],
    ['noext', 'application/octet-stream'],
    ['.bashrc', 'application/octet-stream'],
    ['dir.d/file', 'application/octet-stream'],
  ])('%s', (name, type) => expect(contentTypeOf(name)).toBe(type));
});

describe('messages never show the storage root', () => {
  it.each([
    ['s3://bucket/p/', 'GetObject s3://bucket/p/team/a.hxz failed', 'GetObject team/a.hxz failed'],
    ['s3://bucket/p/', 'ListObjectsV2 s3://bucket/p/ failed', 'ListObjectsV2 the storage root failed'],
    ['s3://bucket/p/', 'listing s3://bucket/p: denied', 'listing the storage root: denied'],
    ['file:///srv/a%20b/', 'open /srv/a b/x.hxz: ENOENT (file:///srv/a%20b/x.hxz)', 'open x.hxz: ENOENT (x.hxz)'],
    ['file:///srv/a/', 'nothing to hide in /srv/ab/x', 'nothing to hide in /srv/ab/x'],
  ])('%s: %s', async (root, message, want) => {
    const { makeRedactor } = await import('@hexz/src/gateway/http.js');
    expect(makeRedactor(root)(message)).toBe(want);
  });
});
