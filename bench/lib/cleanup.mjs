// Things to undo whatever happens: FUSE mounts, servers (hexz serve, nginx). Registered while they
// exist; run on Ctrl-C / SIGTERM and at the end of the harness.
const pending = new Set();

export function registerCleanup(fn) {
  pending.add(fn);
  return () => pending.delete(fn);
}

export async function runCleanups() {
  const fns = [...pending];
  pending.clear();
  for (const fn of fns.reverse()) {
    try {
      await fn();
    } catch {
      /* best effort */
    }
  }
}

let installed = false;
export function installSignalHandlers() {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`[bench] ${sig}: cleaning up mounts and servers`);
      runCleanups().finally(() => process.exit(130));
    });
  }
}
