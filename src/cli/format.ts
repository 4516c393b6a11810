/**
 * Human-readable formatting for CLI output: sizes, ratios, modes, aligned tables.
 */

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '');
  return `${n < 0 ? '-' : ''}${s} ${units[i]}`;
}

/** 2.345 → "2.35x". */
export function formatRatio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? '-' : `${r.toFixed(2)}x`;
}

/** Seconds → "1.23 s" / "2m05s". */
export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(2)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

/** Like `ls -l`: "drwxr-xr-x". */
export function formatMode(type: 'file' | 'directory' | 'symlink', mode: number): string {
  const t = type === 'directory' ? 'd' : type === 'symlink' ? 'l' : '-';
  const rwx = (bits: number) => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  return t + rwx(mode >> 6) + rwx(mode >> 3) + rwx(mode);
}

/** Rows of cells → aligned columns (numbers right-aligned). */
export function table(rows: Array<Array<string | number>>): string {
  if (rows.length === 0) return '';
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, String(c).length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => {
          const last = i === r.length - 1;
          if (typeof c === 'number') return String(c).padStart(widths[i]);
          return last ? String(c) : String(c).padEnd(widths[i]);
        })
        .join('  '),
    )
    .join('\n');
}

/** "key: value" lines with aligned values. */
export function keyValues(pairs: Array<[string, string | number | undefined]>): string {
  const shown = pairs.filter(([, v]) => v !== undefined);
  const w = Math.max(...shown.map(([k]) => k.length));
  return shown
    .map(([k, v]) => `${`${k}:`.padEnd(w + 1)} ${v}`)
    .join('\n');
}

/** A signature check (src/crypto/signatures.ts) in words: "Ed25519, key 3f…: trusted (ci)". */
export function formatSignature(c: { state: string; formatVersion: number; keyId?: string; signer?: string }): string {
  if (c.state === 'unsigned') return c.formatVersion < 2 ? 'none (format version 1 cannot be signed)' : 'none (unsigned)';
  const by = `Ed25519, key ${c.keyId}`;
  const who = c.signer ? ` (${c.signer})` : '';
  switch (c.state) {
    case 'trusted':
      return `${by}: trusted${who}`;
    case 'untrusted':
      return `${by}: NOT TRUSTED (not among the trusted keys)`;
    case 'bad':
      return `${by}${who}: BAD SIGNATURE (altered after signing)`;
    default:
      return `${by} (not checked: no trusted keys given)`;
  }
}
