/**
 * `hexz mount ARCHIVE MOUNTPOINT [--cache-size SIZE] [--allow-other] [--foreground] [--ready-file PATH] [--fuse 3|2|auto]`: see docs/cli.md
 * and docs/operations.md ("FUSE mounts"). Serves the mount from this process until SIGINT/SIGTERM or
 * an unmount from elsewhere, and resolves only after the mount is gone (runCommand then exits).
 */
import type { FuseChoice, MountLogKind } from '../../../fuse/mount.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(ctx: CommandContext, [location, mountpoint]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  // Decode threads boot (~90 ms each) while the archive opens and the mount comes up, not on the
  // first sequential read (measured: the first read of a cold pass waited 148 ms for them).
  ctx.warmDecoders();
  // Loaded here, not at the top of the command table: only `hexz mount` ever loads a FUSE binding.
  const { checkFuseAvailable, mountArchive, redactLocation } = await import('../../../fuse/mount.js');
  // Fail on a machine without FUSE before spending requests on opening a remote archive.
  const fuse = (opts.fuse ?? 'auto') as FuseChoice;
  await checkFuseAvailable({ fuse });
  const archive = await ctx.open(location);
  try {
    // --quiet keeps errors and the readiness line: a sidecar's log-based checks wait for it.
    const log = (line: string, kind: MountLogKind) => {
      if (!ctx.config.quiet || kind !== 'info') ctx.stderr.write(`${line}\n`);
    };
    const mount = await mountArchive(archive, mountpoint, {
      allowOther: Boolean(opts.allowOther),
      fuse,
      readyFile: typeof opts.readyFile === 'string' ? opts.readyFile : undefined,
      signal: ctx.signal,
      // A remote archive replaced while mounted: new opens switch to the new version (docs/operations.md).
      reopen: () => ctx.open(location),
      log,
      // The mount table is world-readable: no user:password@, no presigned query string.
      label: redactLocation(location),
    });
    // --foreground is the only mode: the process that serves the mount is this one (containers,
    // systemd and `&` all want that); the flag is accepted for scripts written for other tools.
    const reason = await mount.ended;
    return { json: { archive: redactLocation(location), mountpoint: mount.mountpoint, ended: reason } };
  } finally {
    await archive.close();
  }
}
