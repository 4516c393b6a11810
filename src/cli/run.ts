/**
 * The one place that prints results, maps errors to exit codes (through ERROR_TABLE) and calls
 * process.exit. Commands are plain async functions returning a CommandResult.
 */
import { abortOpenWriters } from '../../storage/index.js';
import { globalConfig, type GlobalFlags } from './config.js';
import { toHexzError } from '../errors.js';
import { CommandContext, type CommandResult } from './context.js';
import { cliMessage } from './remedies.js';
import { closeSharedDecodePool } from '../reader/decode-pool.js';

export type CommandFn = (ctx: CommandContext, args: string[], opts: Record<string, unknown>) => Promise<CommandResult | void>;

/** Exit code when interrupted (128 + SIGINT), as shells expect. */
const EXIT_INTERRUPTED = 130;
/**
 * How long a second Ctrl-C waits for open writers to abort (temp file removed, S3 multipart upload
 * aborted) before exiting: long enough for one AbortMultipartUpload, short enough to feel immediate.
 */
const SECOND_SIGNAL_CLEANUP_MS = 2000;

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())));
}

/**
 * Run one command: build the config from flags and env, wire Ctrl-C/SIGTERM to an AbortSignal, print
 * the result (JSON with --json), and exit with the code from the error table.
 */
export async function runCommand(load: () => Promise<{ run: CommandFn }>, args: string[], flags: GlobalFlags & Record<string, unknown>): Promise<never> {
  const controller = new AbortController();
  let interrupted = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted++;
    if (interrupted === 1) {
      // First Ctrl-C: the command stops at its next check and cleans up on its way out.
      controller.abort(new Error(`received ${sig}`));
    } else if (interrupted === 2) {
      // Second: stop now, but abort open writers first (bounded), so nothing is left behind.
      process.stderr.write('hexz: interrupted again: cleaning up, then exiting\n');
      void abortOpenWriters(new Error(`received ${sig} again`), SECOND_SIGNAL_CLEANUP_MS).finally(() => process.exit(EXIT_INTERRUPTED));
    } else {
      process.exit(EXIT_INTERRUPTED); // third: at once (local temp files still go, see storage/file.ts)
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `hexz cat … | head` closes the pipe early: that is a normal end, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') void exitAfterPools(0);
  });

  let code = 0;
  let json = Boolean(flags.json);
  try {
    const config = globalConfig(flags, process.env);
    json = config.json;
    const ctx = new CommandContext(config, controller.signal);
    const { run } = await load();
    const result = (await run(ctx, args, flags)) ?? {};
    if (json && result.json !== undefined) process.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
    else if (!json && result.text && !config.quiet) process.stdout.write(`${result.text}\n`);
    code = result.exitCode ?? 0;
  } catch (err) {
    const e = toHexzError(err);
    code = controller.signal.aborted && (e.code === 'ABORTED' || e.code === 'INTERNAL') ? EXIT_INTERRUPTED : e.kind.exit;
    const message = cliMessage(e);
    if (json) process.stdout.write(`${JSON.stringify({ error: { ...e.toJSON(), message } }, null, 2)}\n`);
    process.stderr.write(`hexz: error: ${code === EXIT_INTERRUPTED ? 'interrupted' : message}\n`);
    if (process.env.HEXZ_DEBUG && e.stack) process.stderr.write(`${e.stack}\n${e.cause instanceof Error ? e.cause.stack : ''}\n`);
  }
  await flush(process.stdout);
  await flush(process.stderr);
  return exitAfterPools(code);
}

/**
 * Exit once the decode threads have left: `process.exit` stops a thread that is inside zstd, which
 * aborts the process (../worker-exit.ts). A failed command can leave extents decoding.
 */
function exitAfterPools(code: number): Promise<never> {
  // The first exit wins: a closed stdout (exit 0) is not overridden by the write error that follows it.
  exiting ??= closeSharedDecodePool().then(() => process.exit(code));
  return exiting;
}
let exiting: Promise<never> | undefined;
