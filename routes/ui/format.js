// How numbers, sizes and dates read on the page.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.5 MiB`; exact bytes under 1 KiB. */
export function bytes(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  if (Math.abs(n) < 1024) return `${n} B`;
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? '-' : ''}${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[i]}`;
}

/** A size change: `+1.2 MiB`, `-30 B`, `±0`. */
export function delta(n) {
  return n === 0 ? '±0' : n > 0 ? `+${bytes(n)}` : bytes(n);
}

export function count(n) {
  return n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US');
}

/** `12.3×` */
export function ratio(r) {
  return r === undefined || r === null || !Number.isFinite(r) ? '–' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

export function percent(part, whole) {
  if (!whole) return '0 %';
  const p = (100 * part) / whole;
  return `${p > 0 && p < 0.1 ? '<0.1' : p.toFixed(p >= 10 ? 0 : 1)} %`;
}

/** `2026-01-02 03:04` (UTC, as the archive keeps it). */
export function date(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isFinite(d.getTime()) ? d.toISOString().slice(0, 16).replace('T', ' ') : '–';
}
