/**
 * The one check shared by every command that writes an archive next to others it depends on (`pack
 * --base`, `flatten`): the output must not be one of those archives. Overwriting one, even with
 * `--force`, gives it a new UUID and every version packed against it stops opening.
 */
import { sameObject } from '../../storage/index.js';
import { HexzError } from '../errors.js';

/**
 * Throw `INVALID_ARGUMENT` when `outUrl` names the same object as `url` (however spelled).
 * `what` says what `url` is ("the base v1.hxz"); `consequence` what writing it would do.
 */
export async function refuseOutputAt(outUrl: string, url: string, what: string, consequence: string): Promise<void> {
  if (await sameObject(outUrl, url)) {
    throw new HexzError('INVALID_ARGUMENT', `the output ${outUrl} is ${what}: ${consequence} (write to another name)`, { url: outUrl });
  }
}
