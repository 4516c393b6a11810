import { promises as fs } from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { hostileCases } from '../helpers/hostile.js';
import { hexz } from '../helpers/cli.js';

it('explore', async () => {
  const dir = '/tmp/h/work';
  await fs.mkdir(dir, { recursive: true });
  const cases = await hostileCases(dir);
  for (const c of cases) {
    const f = path.join(dir, c.name + '.hxz');
    await fs.writeFile(f, c.bytes);
    const row: string[] = [c.name.padEnd(36)];
    for (const args of [['ls', '-R', f], ['cat', f, c.file ?? 'a.txt'], ['extract', f, path.join(dir, 'out-' + c.name)], ['verify', f]]) {
      const rss = path.join(dir, 'rss');
      await fs.rm(rss, { force: true });
      const r = await hexz(args, { env: { NODE_OPTIONS: '--import /work/main/test/helpers/report-rss.mjs', HEXZ_TEST_RSS_FILE: rss } });
      const kb = Number(await fs.readFile(rss, 'utf8').catch(() => '0'));
      const m = /"code":"([A-Z_]+)"|error[^:]*: ?([A-Z_]+)?/.exec(r.stderr);
      row.push(`${args[0]}=${r.code}/${Math.round(kb / 1024)}M ${r.stderr.split('\n')[0].slice(0, 90)}`);
    }
    console.log(row.join('\n   '));
  }
}, 600_000);
