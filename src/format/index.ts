/**
 * The .hxz format (version 2, and version 1 for reading): pure encoders and decoders of every structure in docs/format.md.
 */
export * from './constants.js';
export * from './bytes.js';
export * from './header.js';
export * from './frame.js';
export * from './root.js';
export * from './chunk-index.js';
export * from './file-table.js';
