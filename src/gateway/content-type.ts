/**
 * Content-Type by file extension. A small table of the types datasets and documentation meet, kept
 * here rather than pulling a MIME database into the dependencies; anything else is
 * `application/octet-stream`, which browsers download instead of rendering.
 */

const TEXT = '; charset=utf-8';

/** Extension (lower case, no dot) → media type. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  txt: `text/plain${TEXT}`,
  text: `text/plain${TEXT}`,
  log: `text/plain${TEXT}`,
  md: `text/markdown${TEXT}`,
  markdown: `text/markdown${TEXT}`,
  csv: `text/csv${TEXT}`,
  tsv: `text/tab-separated-values${TEXT}`,
  html: `text/html${TEXT}`,
  htm: `text/html${TEXT}`,
  css: `text/css${TEXT}`,
  js: `text/javascript${TEXT}`,
  mjs: `text/javascript${TEXT}`,
  xml: `application/xml${TEXT}`,
  json: 'application/json',
  geojson: 'application/geo+json',
  jsonl: 'application/jsonl',
  ndjson: 'application/x-ndjson',
  yaml: `application/yaml${TEXT}`,
  yml: `application/yaml${TEXT}`,
  toml: `application/toml${TEXT}`,
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/vnd.microsoft.icon',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  bmp: 'image/bmp',
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  zst: 'application/zstd',
  bz2: 'application/x-bzip2',
  xz: 'application/x-xz',
  tar: 'application/x-tar',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  flac: 'audio/flac',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  parquet: 'application/vnd.apache.parquet',
  arrow: 'application/vnd.apache.arrow.file',
  pmtiles: 'application/vnd.pmtiles',
  hxz: 'application/vnd.hexz',
};

/** The default for unknown extensions: opaque bytes. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Media type of a file name or path, by its extension. */
export function contentTypeOf(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return DEFAULT_CONTENT_TYPE;
  return CONTENT_TYPES[base.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
