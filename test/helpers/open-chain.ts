/** Opening an archive together with its whole chain, for tests about bases. */
import { openArchive, type Archive, type OpenArchiveOptions } from '@hexz/src/reader/archive.js';

/**
 * Open an archive and find every base (`BASE_MISSING`, `BASE_MISMATCH` or a signature refusal as
 * opening used to report them): opening alone contacts no base, a read of a base's chunk does.
 */
export async function openChain(source: string, opts: OpenArchiveOptions = {}): Promise<Archive> {
  const a = await openArchive(source, opts);
  try {
    await a.findBases();
    return a;
  } catch (err) {
    await a.close();
    throw err;
  }
}
