/**
 * `hexz`: the command table. Parsing and help come from commander (the standard Node CLI parser);
 * each command's code is imported only when that command runs, so `hexz ls` never loads the packer,
 * the gateway or the AWS SDK. Documented in docs/cli.md.
 */
import { Command, CommanderError, Option } from 'commander';

import { VERSION } from '../version.js';
import { runCommand, type CommandFn } from './run.js';

type Loader = () => Promise<{ run: CommandFn }>;

/** Help of `--sign-key`, an option of every command that writes an archive. */
const SIGN_KEY_HELP = 'sign the archive with this private key (hexz keygen --sign NAME makes one; env HEXZ_SIGN_KEY)';

const program = new Command('hexz')
  .description('Deduplicated, seekable single-file archives: pack, read, serve and mount .hxz files.')
  .version(VERSION, '-V, --version')
  .showHelpAfterError('(add --help for usage)')
  .option('--json', 'machine-readable output')
  .option('-q, --quiet', 'no progress, warnings or summaries')
  .option('--no-progress', 'never draw progress bars')
  .option('--cache-size <size>', 'block cache budget for the whole process (env HEXZ_CACHE_SIZE; default 256M)')
  .option('--s3-endpoint <url>', 'S3-compatible endpoint, e.g. http://minio:9000 (env HEXZ_S3_ENDPOINT)')
  .option('--s3-region <region>', 'S3 region (env HEXZ_S3_REGION, AWS_REGION)')
  .option('--s3-path-style', 'path-style S3 addressing (default with --s3-endpoint)')
  .option('--key-file <file>', 'key of encrypted archives: 32 bytes raw, hex or base64 (env HEXZ_KEY_FILE)')
  .option('--passphrase-file <file>', 'passphrase of encrypted archives (env HEXZ_PASSPHRASE_FILE or HEXZ_PASSPHRASE)')
  .option('--trusted-keys <file|dir>', 'refuse archives (and bases) not signed by one of these public keys: a file of .pub lines or a directory of *.pub files (env HEXZ_TRUSTED_KEYS)')
  .option('--base-dir <dir>', 'look for the bases of thin archives in this directory (env HEXZ_BASE_DIR)')
  .option('--base-map <uuid=location>', 'location of one base by UUID (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--base-hosts <origins>', "follow base location hints to these other hosts too: * or scheme://host[:port],… (env HEXZ_BASE_HOSTS; default: only the archive's own scheme and host)")
  .option('--http-header <"Name: value">', 'header sent with every HTTP(S) archive request, e.g. Authorization (repeatable; env HEXZ_HTTP_HEADERS, one per line)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--decode-threads <n>', 'threads that decode bulk reads: cat, extract, verify, mounts (env HEXZ_DECODE_THREADS; default: one per core; 0: the main thread)')
  .option('--storage-timeout <seconds>', 'a storage read (HTTP(S), S3) that receives no byte for this long is retried on a fresh connection (env HEXZ_STORAGE_TIMEOUT; default 5)')
  .option('--http-timeout <seconds>', 'the same for HTTP(S) archives only (env HEXZ_HTTP_TIMEOUT; default 5)')
  .option('--http-retries <n>', 'HTTP(S) retries on connection errors and 5xx (env HEXZ_HTTP_RETRIES; default 3)');
// Before any subcommand is defined: settings are inherited when a subcommand is created.
program.exitOverride();

/** Register a command whose implementation lives in ./commands/<file>.js. */
function command(spec: string, description: string, load: Loader): Command {
  const cmd = program.command(spec).description(description);
  cmd.action(async (...params: unknown[]) => {
    // commander calls action(arg1, …, argN, options, command); a variadic last argument is an array
    // and a missing optional one is undefined (only trailing ones can be missing).
    const self = params[params.length - 1] as Command;
    const positional = params.slice(0, self.registeredArguments.length).flatMap((p) => (Array.isArray(p) ? p : p === undefined ? [] : [String(p)]));
    await runCommand(load, positional, self.optsWithGlobals());
  });
  return cmd;
}

command('pack <input> <output>', 'pack a file or directory into an archive (a thin delta with --base)', () => import('./commands/pack.js'))
  .addOption(new Option('-c, --compression <codec>', 'chunk codec').choices(['zstd', 'lz4', 'none']).default('zstd'))
  .option('-l, --level <n>', 'zstd level, -7 (fastest) to 22 (smallest); 0 = zstd default; applies to zstd only (default: 3)')
  .option('--chunk-size <size>', 'average chunk size (power of two; min/max follow at 1/4 and 4x)')
  .option('-j, --threads <n>', 'worker threads (default: all cores)')
  .option('-b, --base <archive>', 'base archive; store only chunks it lacks (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--encrypt', 'encrypt with --key-file or --passphrase-file (AES-256-GCM)')
  .option('-m, --meta <key=value>', 'user metadata (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--sign-key <file>', SIGN_KEY_HELP)
  .option('-f, --force', 'replace the output if it exists');

command('info <archive>', 'show format, sizes, ratios, chunking, signatures and the chain of bases (with --trusted-keys: whether each signer is trusted)', () => import('./commands/info.js'));

command('ls <archive> [path]', 'list a directory of an archive', () => import('./commands/ls.js'))
  .option('-l, --long', 'mode, size, mtime')
  .option('-r, --recursive', 'everything below the directory');

command('cat <archive> <path>', 'write a file (or a byte range of it) to stdout', () => import('./commands/cat.js'))
  .option('--offset <n>', 'first byte', '0')
  .option('--length <n>', 'number of bytes (default: to the end)');

command('extract <archive> <dir> [paths...]', 'restore files, directories and symlinks into a directory', () => import('./commands/extract.js'))
  .option('-f, --force', 'replace existing files');

command('verify <archive>', 'check every structure and re-hash every chunk, bases included (with --trusted-keys: and every signature of the chain)', () => import('./commands/verify.js'));

command('sign <archive>', 'sign an existing archive (only its trailer changes; local archives are replaced atomically)', () => import('./commands/sign.js'))
  .option('--sign-key <file>', 'the private key (hexz keygen --sign NAME makes one; env HEXZ_SIGN_KEY)')
  .option('-o, --output <location>', 'write the signed archive there instead of replacing ARCHIVE (required for remote archives)')
  .option('-f, --force', 'replace the output if it exists');

command('diff <a> <b>', 'files added, removed, modified and renamed between two archives, and shared chunks', () => import('./commands/diff.js'));

command('flatten <delta> <output>', 'write a self-contained copy of a thin archive (no bases; unsigned unless --sign-key)', () => import('./commands/flatten.js'))
  .option('--sign-key <file>', SIGN_KEY_HELP)
  .option('-f, --force', 'replace the output if it exists');

command('keygen <file>', 'write a new random 32-byte encryption key (hex, mode 0600); with --sign, an Ed25519 signing key pair FILE.key and FILE.pub', () => import('./commands/keygen.js'))
  .option('--sign', 'write a signing key pair: FILE.key (private, PKCS#8 PEM, mode 0600) and FILE.pub (public, one line)')
  .option('-f, --force', 'replace existing files');

command('serve', 'run the HTTP gateway over a directory or S3 prefix of archives', () => import('./commands/serve.js'))
  .option('--storage <url>', 'archive store: a directory or s3://bucket/prefix (env HEXZ_STORAGE; default ./archives)')
  .option('--host <host>', 'address to bind (env HEXZ_HOST; default 127.0.0.1)')
  .option('--port <port>', 'port (env HEXZ_PORT; default 8080)')
  .option('--config <file>', 'JSON config file (flags and env override it)')
  .option('--cors-origin <origin>', 'allowed CORS origin (repeatable; env HEXZ_CORS_ORIGINS, comma-separated)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--auth-token-file <file>', 'require a bearer token from this file, one per line (repeatable; env HEXZ_AUTH_TOKEN_FILE, comma-separated)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--cache-control <value>', 'Cache-Control of content responses (env HEXZ_CACHE_CONTROL)')
  .option('--key-dir <dir>', 'keys of encrypted archives by name prefix (env HEXZ_KEY_DIR)')
  .option('--archive-ttl <seconds>', 'revalidate an open archive against storage after this long (env HEXZ_ARCHIVE_TTL_MS in ms; default 5)')
  .option('--max-ranges <n>', 'most ranges honoured in one request (env HEXZ_MAX_RANGES; default 32)')
  .option('--request-timeout <seconds>', 'deadline before the first byte of a response (env HEXZ_REQUEST_TIMEOUT_MS in ms)')
  .option('--shutdown-timeout <seconds>', 'how long in-flight responses may finish on SIGTERM (env HEXZ_SHUTDOWN_TIMEOUT_MS in ms)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env HEXZ_LOG_LEVEL; default info)')
  .option('--workers <n>', 'worker threads serving requests over one shared cache (env HEXZ_WORKERS; default 0: one per core)')
  .option('--health-port <port>', 'also answer /healthz on this port, for liveness probes that must not queue behind content requests (env HEXZ_HEALTH_PORT; default: none)');

command('mount <archive> <mountpoint>', 'mount an archive read-only with FUSE', () => import('./commands/mount.js'))
  // --cache-size, the key and S3/HTTP options are global but matter here: list them in `mount --help`.
  .configureHelp({ showGlobalOptions: true })
  .option('--allow-other', 'let other users (and other containers) read the mount')
  .option('--foreground', 'stay in the foreground (the default; kept for scripts)')
  .option('--ready-file <path>', 'create this file once the mount is up (readiness probes)')
  .addOption(new Option('--fuse <binding>', 'FUSE binding: 3 (libfuse3, reads of up to 1 MiB), 2 (fuse-native, libfuse2) or auto (3, else 2)').choices(['auto', '3', '2']).env('HEXZ_FUSE').default('auto'))
  .addHelpText('after', '\nWith --trusted-keys an archive (or base) not signed by a trusted key is refused before mounting, and so is a replaced version.')
  .addHelpText('after', '\nWith --quiet only errors and the readiness line ("hexz: mounted … (read-only)") are printed.');

command('checkout [archive] [dir]', 'a writable workspace of an archive in a new directory (a FUSE overlay: nothing is copied), to change and commit as a thin delta', () => import('./commands/checkout.js'))
  .option('--copy', 'extract a full, materialised copy instead of mounting an overlay (what happens anyway where FUSE is not usable)')
  .option('--resume', 'mount an existing workspace again (after a reboot, a kill or an unmount): hexz checkout --resume DIR|ID')
  .option('--foreground', 'serve the mount from this process (what the background server runs)')
  .option('--allow-other', 'let other users use the workspace mount')
  .addOption(new Option('--fuse <binding>', 'FUSE binding: 3, 2 or auto').choices(['auto', '3', '2']).env('HEXZ_FUSE'));

command('workspaces', 'list the workspaces under HEXZ_HOME (~/.hexz) and whether each is mounted', () => import('./commands/workspaces.js'))
  .option('--forget <id|dir>', 'unmount a workspace and delete its state, uncommitted changes included (refused while a commit runs)');

command('status [dir]', 'paths added, modified, deleted and renamed in a workspace since its archive', () => import('./commands/status.js'));

command('commit <output>', 'write a workspace as a thin delta of its archive, which becomes the new base', () => import('./commands/commit.js'))
  .option('-C, --dir <dir>', 'the workspace (default: the one containing the current directory)')
  .addOption(new Option('-c, --compression <codec>', 'chunk codec').choices(['zstd', 'lz4', 'none']).default('zstd'))
  .option('-l, --level <n>', 'zstd level', '3')
  .option('-j, --threads <n>', 'worker threads (default: all cores)')
  .option('-m, --meta <key=value>', 'user metadata (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--allow-empty', 'write a new archive even when nothing changed')
  .option('--sign-key <file>', SIGN_KEY_HELP)
  .option('-f, --force', 'replace the output if it exists');

command('unmount <mountpoint>', 'unmount a hexz mount (also clears a stale one)', () => import('./commands/unmount.js'));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; usage errors exit 2 (ERROR_TABLE's INVALID_ARGUMENT), as documented.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  throw err;
}
