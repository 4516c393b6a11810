// Running a set of tools over several runs, interleaved (run 1 of every tool, then run 2 …) so that a
// burst of background load does not land on one tool only, and keeping the median of every figure.
import { medianOf } from './measure.mjs';

/**
 * tools: [{ name, skip?: string (why it cannot run), prepare?: async (run) => void, run: async (run) =>
 * ({ wall, cpu, maxRssBytes, ...other numbers }) }]. Returns Map name → { ok, median, error }.
 * A failing peer gets `error` and does not stop the others; a failing hexz (name starts with "hexz")
 * is rethrown after all tools ran, so the scenario fails visibly.
 */
export async function measureTools(ctx, tools, runs = ctx.runs) {
  const results = new Map(tools.map((t) => [t.name, { runs: [], error: t.skip ? null : null, skip: t.skip ?? null }]));
  for (let r = 0; r < runs; r++) {
    for (const t of tools) {
      const res = results.get(t.name);
      if (t.skip || res.error) continue;
      try {
        if (t.prepare) await t.prepare(r);
        const m = await t.run(r);
        res.runs.push(m);
        ctx.log(`  ${t.name} run ${r + 1}/${runs}: ${summarize(m)}`);
      } catch (err) {
        res.error = String(err.message || err).slice(0, 600);
        ctx.log(`  ${t.name} FAILED: ${res.error}`);
      }
    }
  }
  let hexzError = null;
  for (const t of tools) {
    const res = results.get(t.name);
    res.median = res.runs.length ? medianOf(res.runs) : null;
    if (res.error && t.name.startsWith('hexz') && !hexzError) hexzError = new Error(`${t.name}: ${res.error}`);
  }
  if (hexzError) throw hexzError;
  return results;
}

function summarize(m) {
  const parts = [];
  if (typeof m.wall === 'number') parts.push(`${m.wall.toFixed(2)} s`);
  if (typeof m.cpu === 'number') parts.push(`cpu ${m.cpu.toFixed(2)} s`);
  if (typeof m.maxRssBytes === 'number') parts.push(`rss ${(m.maxRssBytes / 1048576).toFixed(0)} MiB`);
  for (const [k, v] of Object.entries(m)) {
    if (['wall', 'cpu', 'maxRssBytes', 'user', 'sys', 'code', 'stdout', 'stderr', 'signal'].includes(k)) continue;
    if (typeof v === 'number') parts.push(`${k} ${Number.isInteger(v) ? v : v.toFixed(2)}`);
  }
  return parts.join(', ');
}

/** A row's note for a tool that was skipped or failed. */
export function noteFor(res) {
  if (!res) return 'not run';
  if (res.skip) return `not run: ${res.skip}`;
  if (res.error) return `failed: ${res.error}`;
  return undefined;
}

/** Keep only the numeric measures of a timed process result. */
export function usage(r) {
  return { wall: r.wall, cpu: r.cpu, maxRssBytes: r.maxRssBytes };
}

export const MiB = 1 << 20;
