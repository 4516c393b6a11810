/**
 * Containment of locations in the gateway's storage root: the key under the root that a URL names,
 * or nothing when it lies anywhere else (another scheme, host, bucket or directory). The gateway
 * resolves bases of thin archives only through this, so an archive's location hints cannot make it
 * read outside its storage (docs/gateway.md, "Archive lifecycle").
 */
import { normalizePath } from '../format/file-table.js';

/** Decoded path segments of a URL, for comparing locations whatever their percent-encoding. */
function decodedSegments(pathname: string): string[] | undefined {
  const out: string[] = [];
  for (const raw of pathname.split('/')) {
    if (raw === '') continue;
    let d: string;
    try {
      d = decodeURIComponent(raw);
    } catch {
      return undefined; // malformed escape
    }
    // An encoded separator or NUL would let a segment stand for a path: refuse the whole location.
    if (d.includes('/') || d.includes('\0')) return undefined;
    out.push(d);
  }
  return out;
}

/**
 * The key under `rootUrl` that `url` names, or undefined when `url` is outside the root (another
 * scheme, host/bucket or directory). Percent-encoding is compared decoded; an encoded `/` or NUL in
 * a segment refuses the whole location (it would let one segment stand for a path).
 */
export function keyUnderRoot(rootUrl: string, url: string): string | undefined {
  let r: URL;
  let u: URL;
  try {
    r = new URL(rootUrl);
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (r.protocol !== u.protocol || r.host !== u.host) return undefined;
  const rs = decodedSegments(r.pathname);
  const us = decodedSegments(u.pathname);
  if (!rs || !us || us.length <= rs.length) return undefined;
  for (let i = 0; i < rs.length; i++) if (rs[i] !== us[i]) return undefined;
  try {
    const key = normalizePath(us.slice(rs.length).join('/'));
    return key === '' ? undefined : key;
  } catch {
    return undefined;
  }
}

