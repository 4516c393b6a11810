/**
 * Progress bars for long work, drawn by `cli-progress` (well kept, handles terminal width and
 * redraw throttling) on stderr, only when stderr is a TTY: pipes and CI logs stay clean. The library
 * (16 modules, 7–17 ms to load here) is loaded only when a bar is drawn, so `hexz cat` into a pipe
 * and scripts do not pay for it at start-up.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import { formatBytes } from './format.js';

const require = createRequire(import.meta.url);

export interface Progress {
  update(value: number, total?: number): void;
  stop(): void;
}

const NOOP: Progress = { update() {}, stop() {} };

export function createProgress(enabled: boolean, stream: NodeJS.WriteStream, label: string, total: number, unit: 'bytes' | 'count'): Progress {
  if (!enabled) return NOOP;
  const started = performance.now();
  const show = (v: number) => (unit === 'bytes' ? formatBytes(v) : String(v));
  const cliProgress = require('cli-progress') as typeof CliProgress;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} {bar} {percentage}% | {done} / {all} | {rate} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 8,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0, { done: show(0), all: show(total), rate: '' });
  return {
    update(value, newTotal) {
      if (newTotal !== undefined) bar.setTotal(Math.max(newTotal, 1));
      const secs = (performance.now() - started) / 1000;
      const rate = secs > 0 ? (unit === 'bytes' ? `${formatBytes(value / secs)}/s` : `${Math.round(value / secs)}/s`) : '';
      bar.update(value, { done: show(value), all: show(newTotal ?? total), rate });
    },
    stop() {
      bar.stop();
    },
  };
}
