/**
 * Archive names and the URLs that carry them (docs/gateway.md, "Names and URLs").
 *
 * An archive's name is its storage key without `.hxz`, so it may contain `/` (`team/ds/v2`). URLs keep
 * the slashes as they are: `/v1/archives/team/ds/v2/files/a/b.csv`. The view is found at the first
 * path segment after the name that is a view marker — `files` or `tree` anywhere, `disk` as the last
 * segment — so an archive name can never contain a `files` or `tree` segment nor end in `disk`; such
 * keys are skipped when archives are listed. Everything here is pure and works on the raw (still
 * percent-encoded) URL, so an encoded slash is seen and refused before any decoding could hide it.
 */
import { HexzError } from '../errors.js';
import { normalizePath } from '../format/file-table.js';

/** What a URL under `/v1/archives/` asks for. */
export type ArchiveView = 'info' | 'files' | 'tree' | 'disk';

/** Prefix of every per-archive URL. */
export const ARCHIVES_PREFIX = '/v1/archives/';

/** Storage keys of archives end with this; the name is the key without it. */
export const ARCHIVE_SUFFIX = '.hxz';

/** A parsed per-archive URL: decoded archive name, view, and decoded path inside the archive. */
export interface ArchiveTarget {
  name: string;
  view: ArchiveView;
  /** Path inside the archive (`''` for the top directory); empty for `info` and `disk`. */
  path: string;
}

/** The path part of a request URL (no query string), still percent-encoded. */
export function rawPathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * The view a raw URL under `/v1/archives/` asks for, without validating anything; undefined for
 * other URLs. Routing uses it to pick the route plugin, so it must be cheap and must never throw; the
 * route then validates fully with `parseArchiveUrl`.
 */
export function viewOfUrl(url: string): ArchiveView | undefined {
  const path = rawPathOf(url);
  if (!path.startsWith(ARCHIVES_PREFIX)) return undefined;
  let start = path.indexOf('/', ARCHIVES_PREFIX.length); // skip the first name segment
  while (start >= 0) {
    const end = path.indexOf('/', start + 1);
    const seg = end < 0 ? path.slice(start + 1) : path.slice(start + 1, end);
    if (seg === 'files' || seg === 'tree') return seg;
    if (seg === 'disk' && (end < 0 || end === path.length - 1)) return 'disk';
    start = end;
  }
  return 'info';
}

/** Route view of a directory URL under `/files/` (one ending in `/`): the HTML index, not the content route. */
export const DIRECTORY_INDEX_VIEW = 'files-index';

/**
 * The view that routing picks for a raw URL: `viewOfUrl`, except that a `/files/` URL ending in `/`
 * (`/v1/archives/demo/files/`, `…/files/data/`) is `files-index`, the HTML directory listing
 * (routes/autoindex.ts), so the content route never sees directory URLs.
 */
export function routeViewOfUrl(url: string): ArchiveView | typeof DIRECTORY_INDEX_VIEW | undefined {
  const view = viewOfUrl(url);
  return view === 'files' && rawPathOf(url).endsWith('/') ? DIRECTORY_INDEX_VIEW : view;
}

/** Decode one raw URL segment; encoded slashes, NUL and malformed escapes are hostile. */
function decodeSegment(raw: string, what: string): string {
  if (/%(2f|5c|00)/i.test(raw)) {
    throw new HexzError('UNSAFE_PATH', `${what} contains an encoded slash, backslash or NUL`, { path: raw });
  }
  let seg: string;
  try {
    seg = decodeURIComponent(raw);
  } catch {
    throw new HexzError('UNSAFE_PATH', `${what} has a malformed percent-escape`, { path: raw });
  }
  if (seg.includes('\0')) throw new HexzError('UNSAFE_PATH', `${what} contains NUL`, { path: raw });
  if (seg === '.' || seg === '..') throw new HexzError('UNSAFE_PATH', `${what} has a "${seg}" component`, { path: raw });
  return seg;
}

/**
 * Parse the raw URL of a per-archive request into name, view and path, refusing hostile input with
 * `UNSAFE_PATH` (HTTP 400): encoded slashes (`%2F`), NUL, `.`/`..` components, empty name segments.
 * A trailing slash is allowed and ignored.
 */
export function parseArchiveUrl(url: string): ArchiveTarget {
  const path = rawPathOf(url);
  if (!path.startsWith(ARCHIVES_PREFIX)) throw new HexzError('INVALID_ARGUMENT', `not an archive URL: ${path}`);
  const segs = path.slice(ARCHIVES_PREFIX.length).split('/');
  if (segs.length > 1 && segs[segs.length - 1] === '') segs.pop(); // trailing slash
  const name: string[] = [];
  let view: ArchiveView = 'info';
  let i = 0;
  for (; i < segs.length; i++) {
    const seg = segs[i];
    if (i > 0 && (seg === 'files' || seg === 'tree' || (seg === 'disk' && i === segs.length - 1))) {
      view = seg;
      i++;
      break;
    }
    if (seg === '') throw new HexzError('UNSAFE_PATH', 'archive name has an empty component', { path });
    name.push(decodeSegment(seg, 'archive name'));
  }
  if (name.length === 0) throw new HexzError('UNSAFE_PATH', 'empty archive name', { path });
  const inner = segs.slice(i).map((s) => decodeSegment(s, 'path'));
  if (view === 'disk' && inner.length) throw new HexzError('INVALID_ARGUMENT', '/disk takes no path', { path });
  // normalizePath refuses empty components (`a//b`) and over-long paths.
  return { name: checkArchiveName(name.join('/')), view, path: normalizePath(inner.join('/')) };
}

/** True when `name` contains a segment that URLs use as a view marker, so it cannot be addressed. */
export function isReservedName(name: string): boolean {
  const segs = name.split('/');
  return segs.includes('files') || segs.includes('tree') || segs[segs.length - 1] === 'disk';
}

/**
 * Validate an archive name (`team/ds/v2`): a safe relative path, no hidden (`.`-prefixed) segment,
 * not reserved. Returns it normalised; throws `UNSAFE_PATH` or `INVALID_ARGUMENT`.
 */
export function checkArchiveName(name: string): string {
  const n = normalizePath(name);
  if (n === '') throw new HexzError('UNSAFE_PATH', 'empty archive name', { path: name });
  if (n.split('/').some((s) => s.startsWith('.'))) throw new HexzError('UNSAFE_PATH', `archive name "${name}" has a hidden component`, { path: name });
  if (isReservedName(n)) throw new HexzError('INVALID_ARGUMENT', `archive name "${name}" uses a reserved segment (files, tree, or a final disk)`, { path: name });
  return n;
}

/** The archive name of a storage key, or undefined when the key is not a servable archive. */
export function nameOfKey(key: string): string | undefined {
  if (!key.endsWith(ARCHIVE_SUFFIX) || key.length === ARCHIVE_SUFFIX.length) return undefined;
  const name = key.slice(0, -ARCHIVE_SUFFIX.length);
  try {
    return checkArchiveName(name);
  } catch {
    return undefined;
  }
}

/** URL path of an archive (each segment percent-encoded). */
export function archiveUrlPath(name: string, view?: Exclude<ArchiveView, 'info'>, path = ''): string {
  const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  let out = `${ARCHIVES_PREFIX}${enc(name)}`;
  if (view) out += `/${view}`;
  if (path) out += `/${enc(path)}`;
  return out;
}
