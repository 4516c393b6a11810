/**
 * What a command gets: the typed configuration, an abort signal wired to Ctrl-C/SIGTERM, and helpers
 * to open archives and report progress. Commands return a `CommandResult`; printing and exit codes
 * happen in ./run.ts only.
 */
import { BlockCache, sharedCache } from '../../cache/block-cache.js';
import type { GlobalConfig } from './config.js';
import { loadKeySource } from '../crypto/key-files.js';
import type { KeySource } from '../crypto/keys.js';
import type { SigningKey, TrustedKeys } from '../crypto/signatures.js';
import { loadTrustedKeys, readSigningKeyFile } from '../crypto/signing-keys.js';
import { openArchive, type Archive, type OpenArchiveOptions } from '../reader/archive.js';
import { defaultDecodeThreads, sharedDecodePool } from '../reader/decode-pool.js';
import { withFreshArchive } from '../reader/fresh.js';
import { createProgress, type Progress } from './progress.js';

export interface CommandResult {
  /** Machine-readable result, printed with --json. */
  json?: unknown;
  /** Human-readable result, printed otherwise. */
  text?: string;
  /** Non-zero when the command ran but found problems (verify). */
  exitCode?: number;
}

export class CommandContext {
  private keyPromise?: Promise<KeySource | undefined>;
  private trustPromise?: Promise<TrustedKeys | undefined>;
  private signKeyPromise?: Promise<SigningKey | undefined>;
  private readonly plainWarned = new Set<string>();
  readonly warnings: string[] = [];

  constructor(
    readonly config: GlobalConfig,
    readonly signal: AbortSignal,
    readonly stdout: NodeJS.WriteStream = process.stdout,
    readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  /**
   * Start the decode threads now (a bulk command calls this first): a worker takes ~90 ms to boot,
   * which then overlaps loading the command and opening the archive instead of delaying the first
   * extent.
   */
  warmDecoders(): void {
    sharedDecodePool(this.config.decodeThreads ?? defaultDecodeThreads());
  }

  /** The process-wide cache, sized by --cache-size. */
  get cache(): BlockCache {
    return sharedCache(this.config.cacheBytes);
  }

  /** The configured key, read on first use (commands on plain archives never touch key files). */
  key(): Promise<KeySource | undefined> {
    this.keyPromise ??= loadKeySource(this.config);
    return this.keyPromise;
  }

  /** The configured trusted keys (`--trusted-keys`, `HEXZ_TRUSTED_KEYS`), read on first use. */
  trustedKeys(): Promise<TrustedKeys | undefined> {
    const location = this.config.trustedKeys;
    this.trustPromise ??= location ? loadTrustedKeys(location) : Promise.resolve(undefined);
    return this.trustPromise;
  }

  /** The configured signing key (`--sign-key`, `HEXZ_SIGN_KEY`), read on first use. */
  signKey(): Promise<SigningKey | undefined> {
    const file = this.config.signKeyFile;
    this.signKeyPromise ??= file ? readSigningKeyFile(file) : Promise.resolve(undefined);
    return this.signKeyPromise;
  }

  /**
   * Open an archive with the configured storage options, key, cache, base overrides and trusted keys
   * (archives not signed by one are refused; `extra` may lift that, e.g. `trustedKeys: undefined`).
   */
  async open(location: string, extra: OpenArchiveOptions = {}): Promise<Archive> {
    const key = await this.key();
    const archive = await openArchive(location, {
      storage: this.config.storage,
      cache: this.cache,
      key,
      trustedKeys: await this.trustedKeys(),
      decodeThreads: this.config.decodeThreads,
      ...this.config.bases,
      signal: this.signal,
      ...extra,
    });
    // A key does not authenticate a plain archive (docs/format.md, section 9): say so, once per archive.
    if (key && !archive.encrypted && !this.plainWarned.has(archive.url)) {
      this.plainWarned.add(archive.url);
      this.warn(`${archive.url} is not encrypted: the key was not used and its content is not authenticated by it`);
    }
    return archive;
  }

  /**
   * Open the archives at `locations` and run `fn` on them, closing them afterwards. When an archive
   * (or one of its bases) is replaced while being read — `ARCHIVE_CHANGED`, from HTTP ETag pinning
   * or S3 If-Match — everything is reopened once and `fn` runs again on the new version, as the
   * gateway does. Commands that have already produced output (cat, extract) pass `canRetry`, which
   * says whether nothing has been written yet; otherwise the typed error stands (exit 9).
   */
  async withArchives<T>(locations: string[], fn: (archives: Archive[]) => Promise<T>, opts: { canRetry?: () => boolean; open?: OpenArchiveOptions } = {}): Promise<T> {
    let open: Archive[] = [];
    const closeAll = async (archives: Archive[]) => {
      await Promise.all(archives.map((a) => a.close()));
    };
    try {
      return await withFreshArchive({
        open: async () => {
          open = [];
          try {
            for (const location of locations) open.push(await this.open(location, opts.open));
          } catch (err) {
            await closeAll(open);
            throw err;
          }
          return open;
        },
        run: fn,
        release: closeAll,
        canRetry: () => !this.signal.aborted && (opts.canRetry?.() ?? true),
        onRetry: (err) => this.warn(`${err.context.url ?? err.context.archive ?? locations.join(', ')} changed while it was being read; reopening it`),
      });
    } finally {
      await closeAll(open);
    }
  }

  /** `withArchives` for one archive. */
  withArchive<T>(location: string, fn: (archive: Archive) => Promise<T>, opts: { canRetry?: () => boolean; open?: OpenArchiveOptions } = {}): Promise<T> {
    return this.withArchives([location], ([archive]) => fn(archive), opts);
  }

  /** A progress bar on stderr when it is a TTY and output is for humans; a no-op otherwise. */
  progress(label: string, total: number, unit: 'bytes' | 'count' = 'bytes'): Progress {
    const enabled = this.config.progress && !this.config.json && !this.config.quiet && Boolean(this.stderr.isTTY);
    return createProgress(enabled, this.stderr, label, total, unit);
  }

  /** A warning line on stderr (kept for --json output as well). */
  warn(message: string): void {
    this.warnings.push(message);
    if (!this.config.quiet) this.stderr.write(`hexz: warning: ${message}\n`);
  }
}
