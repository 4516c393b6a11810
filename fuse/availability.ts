/**
 * Whether FUSE can be used here, and why not: the device, a fusermount helper, a binding that loads
 * (libfuse3's ./fuse3.ts, else fuse-native), and — when a mount is refused — a diagnosis of the cause
 * as a typed error (FUSE_UNAVAILABLE only when FUSE cannot be used at all). Shared by the read-only
 * mount (./mount.ts) and the workspace overlay (./overlay-mount.ts). Documented in docs/operations.md,
 * "FUSE mounts".
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HexzError, toHexzError } from '../src/errors.js';
import { loadFuse3 } from './fuse3.js';

/** The FUSE device the kernel module provides. */
export const FUSE_DEVICE = '/dev/fuse';
/** What to do when FUSE is missing; part of every FUSE_UNAVAILABLE message. */
export const FUSE_INSTALL_HINT =
  'Install FUSE with `apt-get install -y fuse3 libfuse2` (Debian/Ubuntu; not the `fuse` package, which removes fuse3). ' +
  'In a container, also give it the device and the capability: `docker run --device /dev/fuse --cap-add SYS_ADMIN …` ' +
  '(Kubernetes: securityContext.privileged: true, see deploy/README.md).';

/** Bit of CAP_SYS_ADMIN in the capability masks of /proc/self/status. */
const CAP_SYS_ADMIN = 1n << 21n;

/** The slice of a FUSE binding instance we use (fuse-native's and ./fuse3.ts' alike). */
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  /** libfuse3 only: the read requests the kernel sent (./fuse3.ts). */
  stats?(): { reads: number; maxRead: number; readBuckets: number[] } | undefined;
  /** libfuse3 only: the caller of the operation being dispatched. */
  context?(): { uid: number; gid: number; pid: number; umask: number; flags?: number } | undefined;
}
/** A binding's export: the class, with errno constants (`Fuse.ENOENT === -2`) as statics. */
export type FuseClass = (new (mnt: string, ops: object, opts: Record<string, unknown>) => FuseInstance) & Record<string, unknown>;

/** Which FUSE binding to use: libfuse3 when it loads, else fuse-native ('auto'), or exactly one. */
export type FuseChoice = 'auto' | '3' | '2';

/** The binding a mount uses. */
export interface FuseBinding {
  /** 3: libfuse3 (./fuse3.ts), 2: fuse-native (libfuse2). */
  version: 3 | 2;
  Fuse: FuseClass;
  /** Largest read the kernel sends with this binding (libfuse3: 1 MiB, libfuse2: 128 KiB). */
  maxRequest: number;
  /** Why libfuse3 was not used, when 'auto' fell back to fuse-native. */
  fallback?: string;
}

/** Requests of libfuse3 (FUSE_MAX_PAGES: 256 pages) and of libfuse2 (the kernel's 32-page default). */
const MAX_REQUEST = { 3: 1024 * 1024, 2: 128 * 1024 } as const;

export interface FuseCheckOptions {
  /** The FUSE device (tests point it elsewhere to see the error). */
  device?: string;
  /** Binding to use (default 'auto'): the CLI's --fuse, or HEXZ_FUSE. */
  fuse?: FuseChoice;
}

export function unavailable(what: string, cause?: unknown): HexzError {
  return new HexzError('FUSE_UNAVAILABLE', `FUSE is not available: ${what}. ${FUSE_INSTALL_HINT}`, { device: FUSE_DEVICE }, { cause });
}

/** Where fuse3 installs its helpers (libfuse2 itself looks in /bin, then PATH). */
const HELPER_DIRS = ['/bin', '/usr/bin', '/usr/local/bin', '/sbin', '/usr/sbin'];

async function hasHelper(name: string): Promise<boolean> {
  for (const dir of HELPER_DIRS) {
    try {
      await fs.access(path.join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}

const loaded: { 3?: FuseClass; 2?: FuseClass } = {};

/** Why a library did not load, in words (the loader's message names the missing .so). */
function loadFailure(err: unknown, lib: string, what: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (msg.includes(lib)) return `the ${what} library (${lib}) is missing: ${msg}`;
  return `${what === 'FUSE 3' ? 'the libfuse3 binding (hexz-fuse3, built from libfuse3-dev at install time)' : 'fuse-native'} did not load: ${msg}`;
}

function loadFuse2(): FuseClass {
  // CommonJS native addon, loaded on first use only so every other command starts without it.
  loaded[2] ??= createRequire(import.meta.url)('fuse-native') as FuseClass;
  return loaded[2];
}

/**
 * Check that this machine can mount FUSE filesystems and load a binding: the device exists and opens
 * read-write, a fusermount helper exists (it mounts for `auto_unmount`), and the binding loads —
 * libfuse3's (which needs libfuse3.so.3 and fusermount3), else fuse-native (libfuse.so.2) unless
 * `fuse: '3'` forbids falling back. Each failure is `FUSE_UNAVAILABLE` naming what is missing and how
 * to install it.
 */
export async function checkFuseAvailable(opts: FuseCheckOptions = {}): Promise<FuseBinding> {
  const device = opts.device ?? FUSE_DEVICE;
  const choice = opts.fuse ?? 'auto';
  try {
    await fs.access(device, fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw unavailable(code === 'ENOENT' ? `${device} does not exist (no FUSE kernel module, or a container started without the device)` : `cannot open ${device} (${code})`, err);
  }
  const fusermount3 = await hasHelper('fusermount3');
  if (!fusermount3 && !(await hasHelper('fusermount'))) throw unavailable(`no fusermount helper in ${HELPER_DIRS.join(', ')}`);
  let why3: string | undefined;
  if (choice !== '2') {
    if (!fusermount3) why3 = `no fusermount3 helper (libfuse3 mounts through it) in ${HELPER_DIRS.join(', ')}`;
    else {
      try {
        loaded[3] ??= loadFuse3() as unknown as FuseClass;
        return { version: 3, Fuse: loaded[3], maxRequest: MAX_REQUEST[3] };
      } catch (err) {
        why3 = loadFailure(err, 'libfuse3.so.3', 'FUSE 3');
        if (choice === '3') throw unavailable(`${why3} (the FUSE 3 binding was asked for: --fuse 3 / HEXZ_FUSE=3)`, err);
      }
    }
    if (choice === '3') throw unavailable(`${why3} (the FUSE 3 binding was asked for: --fuse 3 / HEXZ_FUSE=3)`);
  }
  try {
    return { version: 2, Fuse: loadFuse2(), maxRequest: MAX_REQUEST[2], fallback: why3 };
  } catch (err) {
    const why2 = loadFailure(err, 'libfuse.so.2', 'FUSE 2');
    throw unavailable(why3 ? `neither FUSE binding loads: ${why3}; and ${why2}` : why2, err);
  }
}

/** Effective and bounding capability sets of this process (undefined where /proc does not say). */
async function capabilities(): Promise<{ effective: bigint; bounding: bigint } | undefined> {
  try {
    const status = await fs.readFile('/proc/self/status', 'utf8');
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
    if (!eff || !bnd) return undefined;
    return { effective: BigInt(`0x${eff[1]}`), bounding: BigInt(`0x${bnd[1]}`) };
  } catch {
    return undefined;
  }
}

/** The AppArmor profile confining this process, when it is a confining one (`docker-default (enforce)`). */
async function apparmorProfile(): Promise<string | undefined> {
  try {
    const label = (await fs.readFile('/proc/self/attr/current', 'utf8')).replace(/\0/g, '').trim();
    return label && label !== 'unconfined' && !/\(complain\)$/.test(label) ? label : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the mount of `mp` failed, as a typed error. Both bindings only say "fuse failed" (libfuse and
 * fusermount print their reason to stderr themselves), so the cause is diagnosed: FUSE_UNAVAILABLE
 * only when FUSE cannot be used here at all — the device, the CAP_SYS_ADMIN needed to mount (as root,
 * or through the setuid fusermount3 helper), an AppArmor profile that denies mount(2) — and a
 * truthful error otherwise: a mountpoint that vanished (INVALID_ARGUMENT), one a non-root user cannot
 * write, which fusermount3 refuses (PERMISSION), or a refusal we cannot pin down (PERMISSION, pointing
 * at the message above).
 */
export async function diagnoseMountFailure(mp: string, err: Error, device = FUSE_DEVICE, library = 'libfuse3'): Promise<HexzError> {
  const what = `mounting ${mp} failed (${err.message})`;
  const ctx = { path: mp };
  try {
    await fs.access(device, fsConstants.R_OK | fsConstants.W_OK);
  } catch (e) {
    return unavailable(`${what}: cannot open ${device} (${(e as NodeJS.ErrnoException).code})`, err);
  }
  const root = process.geteuid?.() === 0;
  const caps = await capabilities();
  if (caps && !(caps.bounding & CAP_SYS_ADMIN)) {
    return unavailable(`${what}: this process can never hold CAP_SYS_ADMIN, which mounting needs (it is not in its capability bounding set: a container without --cap-add SYS_ADMIN or privileged)`, err);
  }
  if (root && caps && !(caps.effective & CAP_SYS_ADMIN)) return unavailable(`${what}: running as root without CAP_SYS_ADMIN, which mounting needs`, err);
  const profile = await apparmorProfile();
  if (profile) return unavailable(`${what}: the AppArmor profile ${profile} probably denies mount(2); run the container with --security-opt apparmor=unconfined`, err);
  let st;
  try {
    st = await fs.stat(mp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new HexzError('INVALID_ARGUMENT', `${what}: the mountpoint no longer exists`, ctx, { cause: err });
    return toHexzError(e, ctx);
  }
  if (!st.isDirectory()) return new HexzError('INVALID_ARGUMENT', `${what}: the mountpoint is no longer a directory`, ctx, { cause: err });
  if (!root) {
    const writable = await fs.access(mp, fsConstants.W_OK).then(
      () => true,
      () => false,
    );
    if (!writable) {
      return new HexzError('PERMISSION', `${what}: as a non-root user (uid ${process.geteuid?.()}) you may only mount on a directory you can write (fusermount3's rule); mount elsewhere or as root`, ctx, { cause: err });
    }
  }
  return new HexzError(
    'PERMISSION',
    `${what}: FUSE itself is usable here (${device} opens, ${library} and fusermount are installed, CAP_SYS_ADMIN is available), so the mount itself was refused; ` +
      "libfuse's or fusermount's reason, if any, is printed above (e.g. a security policy such as SELinux or seccomp, or mount_max in /etc/fuse.conf for non-root users)",
    ctx,
    { cause: err },
  );
}
