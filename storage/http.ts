// Placeholder until the HTTP backend lands (issue 3): keeps the registry compiling.
import { HexzError } from '../src/errors.js';
import type { HttpOptions } from './index.js';
import type { Storage } from './types.js';
export async function openHttpStorage(url: string, _opts?: HttpOptions): Promise<Storage> {
  throw new HexzError('UNSUPPORTED', `HTTP storage is not implemented yet: ${url}`, { url });
}
