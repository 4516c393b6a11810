/**
 * The HTML directory listing answered for directory URLs under `/files/` (`…/files/data/`): the exact
 * shape of nginx's `autoindex on` (a `<pre>` of `<a href>` lines with a date and a size), because
 * that is what range clients parse to list a directory: GDAL's `/vsicurl/` reads it before opening a
 * file (so it stops probing for sidecar files one by one), `wget -r` follows its links, browsers show
 * it. Pure functions producing strings; the route (routes/autoindex.ts) streams them page by page, so a
 * directory of millions of entries never sits in memory whole (docs/gateway.md, "Directory index").
 */

/** One line of the listing. */
export interface AutoindexEntry {
  /** The entry's own name (last path component), unescaped. */
  name: string;
  /** Directories get a trailing `/` and `-` for a size. */
  directory: boolean;
  size: number;
  /** Modification time, milliseconds since the epoch (shown in UTC). */
  mtimeMs: number;
}

/** Width of the name column, as in nginx (`NGX_HTTP_AUTOINDEX_NAME_LEN`): longer names are cut with `..>`. */
export const NAME_COLUMN = 50;

/** Width of the size column, right-aligned after the date (nginx prints sizes in 19 columns after a space). */
const SIZE_COLUMN = 19;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** HTML-escape text for element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** `02-Jan-2026 03:04`, nginx's date column (UTC, as with `autoindex_localtime off`). */
export function autoindexDate(ms: number): string {
  const d = new Date(Number.isFinite(ms) ? ms : 0);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

/**
 * The start of the page, up to the `../` line: `path` is the decoded URL path shown in the title
 * (`/v1/archives/demo/files/data/`); `parent` says whether a `../` link leads somewhere.
 */
export function autoindexHead(path: string, parent: boolean): string {
  const title = escapeHtml(`Index of ${path}`);
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<h1>${title}</h1><hr><pre>${parent ? '<a href="../">../</a>\r\n' : ''}`;
}

/**
 * One line: the link (the name percent-encoded as one URL segment, so `#`, `?` and spaces survive),
 * the name cut to the column width by characters (never inside a multi-byte character), padding, the
 * date and the size (`-` for directories). nginx measures the column in UTF-8 characters, so do we.
 */
export function autoindexRow(e: AutoindexEntry): string {
  const shown = e.directory ? `${e.name}/` : e.name;
  const href = encodeURIComponent(e.name) + (e.directory ? '/' : '');
  const chars = Array.from(shown);
  const cut = chars.length > NAME_COLUMN ? `${chars.slice(0, NAME_COLUMN - 3).join('')}..>` : shown;
  const pad = ' '.repeat(Math.max(1, NAME_COLUMN + 1 - Array.from(cut).length));
  const size = e.directory ? '-' : String(e.size);
  return `<a href="${escapeHtml(href)}">${escapeHtml(cut)}</a>${pad}${autoindexDate(e.mtimeMs)} ${size.padStart(SIZE_COLUMN)}\r\n`;
}

/** The end of the page. */
export function autoindexTail(): string {
  return '</pre><hr></body>\r\n</html>\r\n';
}

/**
 * A whole listing in one string, nginx's order: directories first, then files, each by name (byte
 * order of UTF-8, like nginx's `strcmp`). The route streams pages instead and keeps the archive's own
 * order (by name, directories and files mixed), because sorting would need the whole directory.
 */
export function renderAutoindex(path: string, entries: AutoindexEntry[], parent = true): string {
  const sorted = [...entries].sort((a, b) => Number(b.directory) - Number(a.directory) || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return autoindexHead(path, parent) + sorted.map(autoindexRow).join('') + autoindexTail();
}
