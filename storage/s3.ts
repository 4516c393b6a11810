// Placeholder until the S3 backend lands (issue 3): keeps the registry compiling.
import { HexzError } from '../src/errors.js';
import type { S3Options } from './index.js';
import type { Storage, StorageRoot, StorageWriter } from './types.js';
export async function openS3Storage(url: string, _opts?: S3Options): Promise<Storage> {
  throw new HexzError('UNSUPPORTED', `S3 storage is not implemented yet: ${url}`, { url });
}
export async function createS3Writer(url: string, _opts?: S3Options): Promise<StorageWriter> {
  throw new HexzError('UNSUPPORTED', `S3 storage is not implemented yet: ${url}`, { url });
}
export async function openS3Root(url: string, _opts?: S3Options): Promise<StorageRoot> {
  throw new HexzError('UNSUPPORTED', `S3 storage is not implemented yet: ${url}`, { url });
}
