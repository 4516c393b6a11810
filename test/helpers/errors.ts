/** Assertions on the one error hierarchy (src/errors.ts), shared by the tests. */
import { HexzError } from '@hexz/src/errors.js';

/** The HexzError `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function errorOf(p: Promise<unknown>): Promise<HexzError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HexzError) return err;
    throw new Error(`expected a HexzError, got ${err}`);
  }
  throw new Error('expected an error, got success');
}
