// Results: one JSON document and one markdown page. A scenario returns sections; each section has
// tables whose rows are tools and whose columns are metrics; every numeric cell gets its ratio to the
// reference row (hexz) of the same table. JSON keeps the long form (tool, metric, value, unit, ratio).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fmtSize } from './datasets.mjs';

/**
 * A table: { title, reference: tool name of the row ratios are taken against (hexz),
 *   columns: [{ key, label, unit, better: 'higher'|'lower'|null, ratio: bool, digits }],
 *   rows: [{ tool, values: { key: number|null }, note? }], notes: [string] }
 */
export function table(title, columns, opts = {}) {
  return { title, reference: opts.reference ?? null, rowLabel: opts.rowLabel ?? 'tool', columns, rows: [], notes: opts.notes ? [...opts.notes] : [] };
}

export function addRow(t, tool, values, note) {
  t.rows.push({ tool, values, ...(note ? { note } : {}) });
  return t;
}

function refRow(t) {
  return t.reference ? t.rows.find((r) => r.tool === t.reference) : null;
}

function ratioOf(t, row, col) {
  const ref = refRow(t);
  if (!ref || col.ratio === false) return null;
  const a = row.values[col.key];
  const b = ref.values[col.key];
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** Long-form rows of a table for JSON. */
export function longRows(t) {
  const out = [];
  for (const row of t.rows) {
    for (const col of t.columns) {
      const v = row.values[col.key];
      if (v === undefined) continue;
      out.push({ tool: row.tool, metric: col.label, key: col.key, value: v, unit: col.unit ?? '', better: col.better ?? null, ratioToHexz: ratioOf(t, row, col), ...(row.note ? { note: row.note } : {}) });
    }
  }
  return out;
}

export function fmtValue(v, col) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  switch (col.unit) {
    case 'bytes':
      return fmtSize(v);
    case 's':
      return v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`;
    case 'us':
      return v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`;
    case 'MiB/s':
      return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} MiB/s`;
    case 'x':
      return `${v.toFixed(2)}×`;
    case '%':
      return `${v.toFixed(1)} %`;
    case 'count':
      return Math.round(v).toLocaleString('en-US');
    default: {
      const d = col.digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
      return `${Number(v.toFixed(d)).toLocaleString('en-US')}${col.unit ? ` ${col.unit}` : ''}`;
    }
  }
}

function fmtRatio(r) {
  if (r === null) return '';
  if (r >= 100) return ` (${r.toFixed(0)}×)`;
  if (r >= 10) return ` (${r.toFixed(1)}×)`;
  return ` (${r.toFixed(2)}×)`;
}

const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function tableMarkdown(t) {
  const lines = [];
  if (t.title) lines.push(`**${t.title}**`, '');
  const head = [t.rowLabel ?? 'tool', ...t.columns.map((c) => `${c.label}${c.better === 'higher' ? ' ↑' : c.better === 'lower' ? ' ↓' : ''}`)];
  lines.push(`| ${head.map(esc).join(' | ')} |`);
  lines.push(`|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const row of t.rows) {
    const cells = [row.note ? `${row.tool} ¹` : row.tool];
    for (const col of t.columns) {
      const v = row.values[col.key];
      const isRef = t.reference === row.tool;
      cells.push(`${fmtValue(v, col)}${isRef ? '' : fmtRatio(ratioOf(t, row, col))}`);
    }
    lines.push(`| ${cells.map(esc).join(' | ')} |`);
  }
  const rowNotes = t.rows.filter((r) => r.note);
  if (rowNotes.length || t.notes.length || t.reference) lines.push('');
  if (t.reference && t.rows.length > 1) lines.push(`(×) = value ÷ the value of **${t.reference}** in the same column; ↑ higher is better, ↓ lower is better.`);
  for (const r of rowNotes) lines.push(`¹ ${r.tool}: ${r.note}`);
  for (const n of t.notes) lines.push(`- ${n}`);
  return lines.join('\n');
}

/** The whole results page. */
export function markdown(results) {
  const m = results.machine;
  const out = [];
  out.push('# hexz benchmark results', '');
  out.push(`Run ${results.started} → ${results.finished} (${(results.seconds / 60).toFixed(1)} min), \`node bench/run.mjs ${results.argv.join(' ')}\`.`, '');
  out.push(`**Machine:** ${m.cpu}, ${m.cores} cores, ${fmtSize(m.memBytes)} RAM, ${m.os}; Node ${m.node}; load average at start ${m.loadStart.join(' / ')}, at end ${(m.loadEnd ?? []).join(' / ')}.`, '');
  out.push(`**Settings:** size preset \`${results.options.size}\`, ${results.options.runs} run(s) per figure (median), timed runs of ${results.options.duration} s; page caches ${results.options.dropCaches ? 'dropped before every cold measurement' : 'NOT dropped (not root): "cold" figures are really warm'}.`, '');
  out.push('**Peers:** ' + Object.entries(results.tools).map(([k, v]) => `${k} ${v.available ? v.version || 'yes' : `missing${v.note ? ` (${v.note})` : ''}`}`).join(' · '), '');
  if (results.notes.length) {
    for (const n of results.notes) out.push(`- ${n}`);
    out.push('');
  }
  if (results.targets.length) {
    out.push('## Targets (../shared/DESIGN.md and the encryption issue)', '');
    out.push(targetsMarkdown(results.targets), '');
  }
  const verdicts = headlines(results);
  if (verdicts.length) {
    out.push('## Where hexz wins and where it loses', '');
    out.push('Each line compares hexz with the best peer in that table on a headline figure (all figures are in the tables below); within 2 % counts as a tie.', '');
    for (const v of verdicts) out.push(`- ${v}`);
    out.push('');
  }
  out.push('## Data sets', '');
  for (const d of results.datasets) out.push(`- **${d.name}**: ${d.description}`);
  out.push('');
  for (const s of results.scenarios) {
    out.push(`## ${s.title}`, '');
    if (s.error) out.push(`**Scenario failed:** ${esc(s.error)}`, '');
    if (s.skipped) out.push(`**Skipped:** ${s.skipped}`, '');
    for (const n of s.notes ?? []) out.push(`- ${n}`);
    if (s.notes?.length) out.push('');
    for (const t of s.tables ?? []) out.push(tableMarkdown(t), '');
    if (s.meaning?.length) {
      out.push('What the numbers mean:', '');
      for (const n of s.meaning) out.push(`- ${n}`);
      out.push('');
    }
  }
  return out.join('\n');
}

/**
 * Plain verdicts: for every table with a hexz reference and every column marked `headline`, hexz
 * against the best peer row (rows whose tool does not start with "hexz" and are not floors).
 */
export function headlines(results) {
  const out = [];
  for (const s of results.scenarios) {
    for (const t of s.tables ?? []) {
      const ref = refRow(t);
      if (!ref) continue;
      for (const col of t.columns.filter((c) => c.headline)) {
        const hv = ref.values[col.key];
        if (typeof hv !== 'number') continue;
        const peers = t.rows.filter((r) => !r.tool.startsWith('hexz') && !/^floor|only$/.test(r.tool) && typeof r.values[col.key] === 'number');
        if (!peers.length) continue;
        const higher = col.better === 'higher';
        const best = peers.reduce((a, b) => ((higher ? b.values[col.key] > a.values[col.key] : b.values[col.key] < a.values[col.key]) ? b : a));
        const pv = best.values[col.key];
        const wins = higher ? hv >= pv : hv <= pv;
        const ratio = pv === 0 ? null : hv / pv;
        const where = `${s.title.replace(/^\d+\.\s*/, '').split(':')[0]} — ${t.title.split(/[,(—]/)[0].trim()}`;
        const tie = ratio !== null && Math.abs(ratio - 1) < 0.02;
        out.push(`${tie ? '**ties**' : wins ? '**wins**' : '**loses**'}: ${where}, ${col.label}: ${ref.tool} ${fmtValue(hv, col)} vs ${best.tool} ${fmtValue(pv, col)}${ratio !== null ? ` (${ratio.toFixed(2)}×)` : ''}`);
      }
    }
  }
  return out;
}

export function targetsMarkdown(targets) {
  const lines = ['| target | measured | bar | status |', '|---|---|---|---|'];
  for (const t of targets) {
    const status = t.met === true ? '**met**' : t.met === false ? '**NOT met**' : 'not measured';
    lines.push(`| ${esc(t.text)} | ${esc(t.measured ?? '–')} | ${esc(t.bar ?? '')} | ${status}${t.note ? ` — ${esc(t.note)}` : ''} |`);
  }
  return lines.join('\n');
}

export async function writeResults(dir, results) {
  await fs.mkdir(dir, { recursive: true });
  const json = {
    ...results,
    scenarios: results.scenarios.map((s) => ({ ...s, tables: (s.tables ?? []).map((t) => ({ title: t.title, reference: t.reference, notes: t.notes, rows: longRows(t) })) })),
  };
  json.verdicts = headlines(results);
  await fs.writeFile(path.join(dir, 'latest.json'), `${JSON.stringify(json, null, 1)}\n`);
  await fs.writeFile(path.join(dir, 'latest.md'), `${markdown(results)}\n`);
  return { json: path.join(dir, 'latest.json'), md: path.join(dir, 'latest.md') };
}

const README_START = '<!-- latest-results:start (written by bench/run.mjs; do not edit by hand) -->';
const README_END = '<!-- latest-results:end -->';

/** The results section of bench/README.md: settings, targets, verdicts and every table. */
export function readmeSection(results) {
  const m = results.machine;
  const out = [README_START, ''];
  out.push(`Last full run: ${results.finished.slice(0, 16).replace('T', ' ')} UTC, \`node bench/run.mjs ${results.argv.join(' ')}\` (${(results.seconds / 60).toFixed(1)} min), size preset \`${results.options.size}\`, ${results.options.runs} run(s) per figure. Machine: ${m.cpu}, ${m.cores} cores, ${fmtSize(m.memBytes)} RAM; load average ${m.loadStart.join(' / ')} at start. Full page with every note: [results/latest.md](results/latest.md), data: [results/latest.json](results/latest.json).`, '');
  if (results.targets.length) out.push('### Targets', '', targetsMarkdown(results.targets), '');
  const v = headlines(results);
  if (v.length) {
    out.push('### Where hexz wins and where it loses', '');
    for (const x of v) out.push(`- ${x}`);
    out.push('');
  }
  for (const s of results.scenarios) {
    out.push(`### ${s.title}`, '');
    if (s.error) out.push(`**Scenario failed:** ${s.error}`, '');
    if (s.skipped) out.push(`**Skipped:** ${s.skipped}`, '');
    for (const t of s.tables ?? []) out.push(tableMarkdown(t), '');
  }
  out.push(README_END);
  return out.join('\n');
}

/** Replace the results section of a README (between the markers), or append it. */
export async function updateReadme(file, results) {
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return false;
  }
  const section = readmeSection(results);
  const a = text.indexOf(README_START);
  const b = text.indexOf(README_END);
  text = a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + README_END.length) : `${text.trimEnd()}\n\n${section}\n`;
  await fs.writeFile(file, text);
  return true;
}
