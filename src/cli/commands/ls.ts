/** `hexz ls ARCHIVE [PATH]`: see docs/cli.md. */
import type { FileEntry } from '../../format/file-table.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatMode, table } from '../format.js';

/** Entries per listing page fetched from the archive. */
const PAGE = 10_000;

export function entryJson(e: FileEntry) {
  return {
    path: e.path,
    type: e.type,
    size: e.size,
    mode: `0${e.mode.toString(8)}`,
    mtime: new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
    ...(e.type === 'symlink' ? { target: e.target } : {}),
  };
}

export async function run(ctx: CommandContext, [location, dir = '']: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  return ctx.withArchive(location, async (archive) => {
    const top = await archive.entry(dir);
    let entries: FileEntry[] = [];
    if (top.type !== 'directory') entries = [top];
    else {
      let cursor: string | undefined;
      do {
        const page = await archive.list(top.path, { recursive: Boolean(opts.recursive), cursor, limit: PAGE });
        entries.push(...page.entries);
        cursor = page.cursor;
      } while (cursor);
    }
    const prefix = top.type === 'directory' && top.path ? `${top.path}/` : '';
    const name = (e: FileEntry) => (e.path.startsWith(prefix) ? e.path.slice(prefix.length) : e.path);
    const shown = (e: FileEntry) => `${name(e)}${e.type === 'directory' ? '/' : ''}${opts.long && e.type === 'symlink' ? ` -> ${e.target}` : ''}`;
    const text = opts.long
      ? table(entries.map((e) => [formatMode(e.type, e.mode), e.size, new Date(Number(e.mtimeNs / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19), shown(e)]))
      : entries.map(shown).join('\n');
    return { json: entries.map(entryJson), text };
  });
}
