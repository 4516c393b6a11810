/**
 * The public library API of Hexz. See README.md ("Library") and docs/format.md.
 */
export { openArchive, Archive } from './reader/archive.js';
export type { ArchiveInfo, ContentPiece, ListOptions, OpenArchiveOptions, ReadRangeOptions } from './reader/archive.js';
export { verifyArchive } from './reader/verify.js';
export type { VerifyReport, VerifyProblem } from './reader/verify.js';
export { pack } from './packer/pack.js';
export type { PackOptions, PackProgress, PackSummary } from './packer/pack.js';
export { flattenArchive } from './packer/flatten.js';
export { diffArchives } from './diff.js';
export type { DiffReport } from './diff.js';
export { extractArchive } from './extract.js';
export type { ExtractOptions, ExtractSummary } from './extract.js';
export { HexzError, isHexzError, ERROR_TABLE } from './errors.js';
export type { ErrorCode, ErrorContext } from './errors.js';
export type { FileEntry, EntryType } from './format/file-table.js';
export type { KeySource } from './crypto/keys.js';
export { DEFAULT_CHUNKING, chunkingForAverage } from './chunker/fastcdc.js';
export type { ChunkingParams } from './chunker/fastcdc.js';
export { BlockCache, sharedCache } from '../cache/block-cache.js';
export { openStorage, openStorageRoot, createWriter } from '../storage/index.js';
export type { Storage, StorageRoot, StorageWriter, StorageOptions } from '../storage/index.js';
