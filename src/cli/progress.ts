/**
 * Progress bars for long work, drawn by `cli-progress` (well kept, handles terminal width and
 * redraw throttling) on stderr, only when stderr is a TTY: pipes and CI logs stay clean.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './format.js';

export interface Progress {
  update(value: number, total?: number): void;
  stop(): void;
}

const NOOP: Progress = { update() {}, stop() {} };

export function createProgress(enabled: boolean, stream: NodeJS.WriteStream, label: string, total: number, unit: 'bytes' | 'count'): Progress {
  if (!enabled) return NOOP;
  const started = performance.now();
  const show = (v: number) => (unit === 'bytes' ? formatBytes(v) : String(v));
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
