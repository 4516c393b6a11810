/** What a failing call threw, for assertions on typed errors. */
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

/** The error code `p` rejects with, `'ok'` when it resolves, or a description of an untyped error. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof HexzError ? err.code : `not a HexzError: ${err}`;
  }
}

/** The error code a synchronous call throws, `'ok'` when it returns, or a description of an untyped error. */
export function codeOfSync(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof HexzError ? err.code : `not a HexzError: ${err}`;
  }
}
