/**
 * How the CLI words a library error's remedy (src/errors.ts, `Remedy`): library messages never name
 * a flag, so the flags to use are added here, the one place that knows them.
 */
import type { HexzError, Remedy } from '../errors.js';

/** The text appended to the message for each remedy, joiner included. */
const CLI_REMEDIES: Record<Remedy, string> = {
  overwrite: ' (use --force to replace it)',
  'overwrite-files': ' (use --force)',
  key: ': give --key-file or --passphrase-file (or HEXZ_PASSPHRASE)',
  'key-file': ': give --key-file',
  passphrase: ': give --passphrase-file or HEXZ_PASSPHRASE',
  'encryption-key': ': --key-file FILE, --passphrase-file FILE or HEXZ_PASSPHRASE (hexz keygen FILE makes one)',
  'base-location': ' (use --base-dir DIR or --base-map UUID=LOCATION if it moved, or --base-hosts ORIGIN to follow a hint to another host)',
  'allow-empty': ' (use --allow-empty to write a new archive anyway)',
  'unchecked-overwrite': '; give --force to write without checking',
  encrypt: ' (add --encrypt)',
  'other-port': ' (choose another with --port)',
  sign: ' (sign it: hexz sign ARCHIVE --sign-key KEY, or pack with --sign-key KEY)',
  'trust-signer': ' (if that key is to be trusted, add its .pub line to the --trusted-keys file or directory)',
  'sign-output': ': give --output LOCATION to write a signed copy (the archive streams through this machine), or sign while packing with --sign-key',
  repack: ': repack it (hexz pack) or flatten it (hexz flatten --sign-key KEY) into a version 2 archive',
  'sign-key': ': give --sign-key FILE (hexz keygen --sign NAME makes one)',
};

/** The error's message as the CLI prints it: with its remedy in the CLI's words. */
export function cliMessage(e: HexzError): string {
  const remedy = e.context.remedy;
  return remedy && CLI_REMEDIES[remedy] ? `${e.message}${CLI_REMEDIES[remedy]}` : e.message;
}
