/**
 * `GET /v1/archives` (paginated list of the archives in the storage root) and
 * `GET /v1/archives/NAME` (what `hexz info` shows: metadata, sizes, ratios, chunking, bases).
 * Locations are given as archive names relative to the root, never as server paths or bucket URLs.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ArchiveInfo } from '../src/reader/archive.js';
import { errorResponses, type RoutePluginOptions } from '../src/gateway/http.js';
import { archiveUrlPath, parseArchiveUrl } from '../src/gateway/names.js';

const LIST_SCHEMA = {
  type: 'object',
  properties: {
    archives: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          size: { type: 'integer' },
          etag: { type: 'string' },
          lastModified: { type: 'string' },
          url: { type: 'string' },
        },
        required: ['name', 'size', 'url'],
      },
    },
    cursor: { type: 'string' },
  },
  required: ['archives'],
} as const;

const CODEC_STATS = { type: 'object', properties: { chunks: { type: 'integer' }, rawBytes: { type: 'integer' }, storedBytes: { type: 'integer' } } } as const;

const INFO_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    uuid: { type: 'string' },
    formatVersion: { type: 'integer' },
    encrypted: { type: 'boolean' },
    keyDerivation: { type: 'string' },
    signature: { type: ['object', 'null'], properties: { algorithm: { type: 'string' }, keyId: { type: 'string' } } },
    archiveSize: { type: 'integer' },
    etag: { type: 'string' },
    created: { type: 'string' },
    creator: { type: 'string' },
    source: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } } },
    compression: { type: 'object', properties: { codec: { type: 'string' }, level: { type: 'integer' } } },
    chunking: {
      type: 'object',
      properties: { algorithm: { type: 'integer' }, normalization: { type: 'integer' }, min: { type: 'integer' }, avg: { type: 'integer' }, max: { type: 'integer' }, seed: { type: 'string' } },
    },
    fileCount: { type: 'integer' },
    logicalSize: { type: 'integer' },
    chunkRefs: { type: 'integer' },
    storedChunks: { type: 'integer' },
    storedChunkBytes: { type: 'integer' },
    uniqueRawBytes: { type: 'integer' },
    holeBytes: { type: 'integer' },
    selfLogicalBytes: { type: 'integer' },
    codecs: { type: 'object', additionalProperties: CODEC_STATS },
    ratios: {
      type: 'object',
      properties: { dedup: { type: 'number' }, compression: { type: 'number' }, logicalToArchive: { type: 'number' } },
    },
    bases: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          uuid: { type: 'string' },
          hint: { type: 'string' },
          name: { type: 'string' },
          direct: { type: 'boolean' },
          logicalBytes: { type: 'integer' },
          archiveSize: { type: 'integer' },
        },
      },
    },
    user: { type: 'object', additionalProperties: { type: 'string' } },
    links: { type: 'object', properties: { tree: { type: 'string' }, disk: { type: 'string' }, diff: { type: 'string' } } },
  },
  required: ['name', 'uuid', 'formatVersion', 'encrypted', 'archiveSize', 'fileCount', 'logicalSize', 'bases'],
} as const;

/** The info document of an archive: `ArchiveInfo` with names instead of locations. */
function infoDocument(name: string, info: ArchiveInfo, nameOfUrl: (url: string) => string | undefined, baseSizes: Array<number | undefined>) {
  const { url: _url, dedupRatio, compressionRatio, ...rest } = info;
  return {
    ...rest,
    name,
    ratios: { dedup: dedupRatio, compression: compressionRatio, logicalToArchive: info.logicalSize / Math.max(1, info.archiveSize) },
    bases: info.bases.map((b, i) => {
      return { uuid: b.uuid, hint: b.hint, name: b.url ? nameOfUrl(b.url) : undefined, direct: b.direct, logicalBytes: b.logicalBytes, archiveSize: baseSizes[i] };
    }),
    links: {
      tree: archiveUrlPath(name, 'tree'),
      disk: info.source.type === 'file' ? archiveUrlPath(name, 'disk') : undefined,
      // What changed since its base (routes/diff.ts), for an archive that has one.
      diff: info.bases.some((b) => b.direct) ? `/v1/diff?to=${encodeURIComponent(name)}` : undefined,
    },
  };
}

/** The archive list and archive info routes. */
export const archiveRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  const { config, registry } = ctx;

  app.get<{ Querystring: { cursor?: string; limit?: number } }>(
    '/v1/archives',
    {
      config: { route: 'archives' },
      schema: {
        querystring: {
          type: 'object',
          properties: { cursor: { type: 'string', maxLength: 4096 }, limit: { type: 'integer', minimum: 1, maximum: config.maxPageSize } },
          additionalProperties: false,
        },
        response: { 200: LIST_SCHEMA, ...errorResponses() },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? config.defaultPageSize;
      const page = await registry.list({ cursor: request.query.cursor, limit });
      return {
        archives: page.archives.map((a) => ({ name: a.name, size: a.size, etag: a.etag, lastModified: a.lastModified?.toISOString(), url: archiveUrlPath(a.name) })),
        cursor: page.cursor,
      };
    },
  );

  app.get(
    '/v1/archives/*',
    {
      constraints: { archiveView: 'info' },
      config: { route: 'archive' },
      schema: { response: { 200: INFO_SCHEMA, ...errorResponses(403, 422) } },
    },
    async (request) => {
      const target = parseArchiveUrl(request.url);
      const lease = await registry.acquire(target.name);
      try {
        const info = lease.archive.info();
        const baseSizes = await lease.archive.baseSizes();
        return infoDocument(target.name, info, (url) => registry.nameOfUrl(url), baseSizes);
      } finally {
        lease.release();
      }
    },
  );
};
