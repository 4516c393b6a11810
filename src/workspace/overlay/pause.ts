/**
 * A test-only stop at a named crash-sensitive step of a workspace server, so that a test can
 * `kill -9` it exactly there instead of racing a timer (test/workspace/overlay.test.ts). With
 * `HEXZ_TEST_PAUSE_AT=<point>` in the server's environment, the first time it reaches that point
 * it writes its pid to the file `HEXZ_TEST_PAUSE_MARKER` names and never goes on (the step's promise
 * stays pending; the rest of the server keeps answering). Unset, a check costs one environment lookup.
 *
 * - `copy-up`: a whole-file copy-up wrote its first piece into `upper/.tmp-*`, not yet renamed;
 * - `extent-fill`: a write filled part of an extent from HEAD into the upper file, not yet in the map;
 * - `commit-reading`: a commit is writing its archive (packing its first file), and stays there until
 *   the commit is interrupted (then it goes on as interrupted: the test checks what is left);
 * - `commit-written`: the commit's archive is written, config.json not yet replaced;
 * - `commit-point`: config.json names the new HEAD, the old generation is not deleted yet.
 */
import { writeFileSync } from 'node:fs';
import { throwIfAborted } from '../../errors.js';

export type PausePoint = 'copy-up' | 'extent-fill' | 'commit-reading' | 'commit-written' | 'commit-point';

let paused = false;

/**
 * Never resolves when the test asked to stop at `point` (see the top of this file) — or, given a
 * signal, rejects with ABORTED when it fires; resolves at once otherwise.
 */
export function pauseAt(point: PausePoint, signal?: AbortSignal): Promise<void> {
  if (process.env.HEXZ_TEST_PAUSE_AT !== point || paused) return Promise.resolve();
  paused = true;
  const marker = process.env.HEXZ_TEST_PAUSE_MARKER;
  if (marker) writeFileSync(marker, `${process.pid}\n`);
  return new Promise<void>((_resolve, reject) => {
    signal?.addEventListener('abort', () => {
      try {
        throwIfAborted(signal);
      } catch (err) {
        reject(err);
      }
    }, { once: true });
  });
}
