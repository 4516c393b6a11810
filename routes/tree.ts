/**
 * `GET /v1/archives/NAME/tree/PATH`: one page of a directory listing (`?recursive=1` for everything
 * below, `?cursor=` to continue, `?limit=` up to the configured maximum). Entries carry type, size,
 * mode, mtime and symlink targets; the listing is read from the archive's file table only, never
 * from content.
 */
import type { FastifyPluginAsync } from 'fastify';
import { isHexzError } from '../src/errors.js';
import type { FileEntry } from '../src/format/file-table.js';
import { errorResponses, flag, FLAG_SCHEMA, type RoutePluginOptions } from '../src/gateway/http.js';
import { archiveUrlPath, parseArchiveUrl } from '../src/gateway/names.js';

const ENTRY_SCHEMA = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string', enum: ['file', 'directory', 'symlink'] },
    size: { type: 'integer' },
    mode: { type: 'string' },
    mtime: { type: 'string' },
    target: { type: 'string' },
    url: { type: 'string' },
  },
  required: ['path', 'name', 'type', 'size', 'mode', 'mtime'],
} as const;

const TREE_SCHEMA = {
  type: 'object',
  properties: {
    archive: { type: 'string' },
    path: { type: 'string' },
    recursive: { type: 'boolean' },
    entries: { type: 'array', items: ENTRY_SCHEMA },
    cursor: { type: 'string' },
  },
  required: ['archive', 'path', 'entries'],
} as const;

/** ISO 8601 with the nanoseconds the archive keeps truncated to milliseconds. */
function isoTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : new Date(0).toISOString();
}

function entryDocument(archive: string, e: FileEntry) {
  return {
    path: e.path,
    name: e.path.slice(e.path.lastIndexOf('/') + 1),
    type: e.type,
    size: e.size,
    mode: (e.mode & 0o7777).toString(8).padStart(4, '0'),
    mtime: isoTime(e.mtimeNs),
    target: e.type === 'symlink' ? e.target : undefined,
    url: e.type === 'file' ? archiveUrlPath(archive, 'files', e.path) : e.type === 'directory' ? archiveUrlPath(archive, 'tree', e.path) : undefined,
  };
}

/** The directory listing route. */
export const treeRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  const { config, registry } = ctx;
  app.get<{ Querystring: { recursive?: string; cursor?: string; limit?: number } }>(
    '/v1/archives/*',
    {
      constraints: { archiveView: 'tree' },
      config: { route: 'tree' },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            recursive: FLAG_SCHEMA,
            cursor: { type: 'string', maxLength: 8192 },
            limit: { type: 'integer', minimum: 1, maximum: config.maxPageSize },
          },
          additionalProperties: false,
        },
        response: { 200: TREE_SCHEMA, ...errorResponses(403, 422) },
      },
    },
    async (request) => {
      const target = parseArchiveUrl(request.url);
      const recursive = flag(request.query.recursive);
      const limit = request.query.limit ?? config.defaultPageSize;
      for (let attempt = 0; ; attempt++) {
        const lease = await registry.acquire(target.name);
        try {
          const page = await lease.archive.list(target.path, { recursive, cursor: request.query.cursor, limit });
          return { archive: target.name, path: target.path, recursive, entries: page.entries.map((e) => entryDocument(target.name, e)), cursor: page.cursor };
        } catch (err) {
          if (attempt === 0 && isHexzError(err, 'ARCHIVE_CHANGED')) {
            registry.invalidate(lease);
            continue;
          }
          throw err;
        } finally {
          lease.release();
        }
      }
    },
  );
};
