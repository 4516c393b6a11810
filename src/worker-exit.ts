/**
 * Ending a worker thread without `worker.terminate()` while it may be inside native code.
 *
 * zstd-napi is built on node-addon-api, which aborts the whole process ("terminate called after
 * throwing an instance of 'Napi::Error'") when a native call returns into an environment that is
 * being terminated (node-addon-api's setup docs; nodejs/node-addon-api#902). A worker stopped by
 * `terminate()`, or by `process.exit()` in the main thread, in the middle of a decompress is exactly
 * that. So pools ask their workers to leave: the request queues behind the jobs already sent, the
 * worker closes its port between two jobs and its thread ends on its own. `terminate()` is only the
 * fallback for a worker that does not answer within the grace period (a bug, not a normal path).
 */
import type { MessagePort, Worker } from 'node:worker_threads';

/** The message that asks a pool worker to leave (a string: no pool's job messages are strings). */
export const EXIT_REQUEST = 'hexz:exit';

/** How long a worker may take to finish the jobs queued before the exit request (a few MiB each). */
const EXIT_GRACE_MS = 10_000;

/** Ask `worker` to leave after its queued jobs and resolve when its thread has ended. */
export function endWorker(worker: Worker, graceMs = EXIT_GRACE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    if (worker.threadId === -1) return resolve(); // already exited
    const timer = setTimeout(() => void worker.terminate().then(() => resolve(), () => resolve()), graceMs);
    timer.unref();
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.ref(); // the caller awaits this: keep the process alive until the thread is gone
    worker.postMessage(EXIT_REQUEST);
  });
}

/** Worker side: true (and the port closed, so the thread ends) when `msg` is the exit request. */
export function isExitRequest(msg: unknown, port: MessagePort): boolean {
  if (msg !== EXIT_REQUEST) return false;
  port.close();
  return true;
}
