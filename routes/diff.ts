/**
 * `GET /v1/diff?to=NAME&from=BASE&limit=N`: what changed from archive `from` (default: the first
 * direct base of `to` in the storage root) to archive `to`: files added, deleted, modified (with size
 * deltas and the bytes still shared) and renamed, and chunk totals. Built on `diffArchives`
 * (src/diff.ts), the same comparison as `hexz diff FROM TO`.
 *
 * Both names travel in the query string, so no URL segment is reserved for it (archive names may hold
 * any segment but the view markers, docs/gateway.md "Names and URLs"). A diff reads both indexes whole
 * (no chunk data when the chunk ids are comparable), so results are kept per pair of archive versions
 * and computed once for concurrent requests; when ids are not comparable, the content it may read is
 * bounded by `DIFF_CONTENT_BUDGET_BYTES` (501 `UNSUPPORTED` past it).
 */
import type { FastifyPluginAsync } from 'fastify';
import { LRUCache } from 'lru-cache';
import { diffArchives, type DiffReport } from '../src/diff.js';
import { HexzError } from '../src/errors.js';
import { errorResponses, withArchiveRetry, type GatewayContext, type RoutePluginOptions } from '../src/gateway/http.js';
import { archiveUrlPath, checkArchiveName } from '../src/gateway/names.js';
import type { ArchiveLease } from '../src/gateway/registry.js';

/** Diffs remembered per pair of archive versions (a report holds at most `maxPageSize` entries per list). */
export const DIFF_CACHE_ENTRIES = 64;

/**
 * File content one diff may read from each archive when their chunk ids are not comparable (other
 * chunking, other key): 256 MiB, a few seconds of reading; `hexz diff` has no such bound.
 */
export const DIFF_CONTENT_BUDGET_BYTES = 256 * 1024 * 1024;

const CHANGE = { type: 'object', properties: { path: { type: 'string' }, type: { type: 'string' }, size: { type: 'integer' } }, required: ['path', 'type', 'size'] } as const;

const DIFF_SCHEMA = {
  type: 'object',
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    comparison: { type: 'object', properties: { method: { type: 'string', enum: ['chunk-ids', 'content'] }, reason: { type: 'string' } }, required: ['method'] },
    summary: {
      type: 'object',
      properties: {
        added: { type: 'integer' },
        removed: { type: 'integer' },
        modified: { type: 'integer' },
        renamed: { type: 'integer' },
        unchanged: { type: 'integer' },
        addedBytes: { type: 'integer' },
        removedBytes: { type: 'integer' },
        logicalSizeFrom: { type: 'integer' },
        logicalSizeTo: { type: 'integer' },
      },
      required: ['added', 'removed', 'modified', 'renamed', 'unchanged'],
    },
    chunks: {
      type: 'object',
      properties: {
        comparable: { type: 'boolean' },
        sharedBytes: { type: ['integer', 'null'] },
        onlyFromBytes: { type: 'integer' },
        onlyToBytes: { type: 'integer' },
        sharedChunks: { type: ['integer', 'null'] },
        onlyFromChunks: { type: 'integer' },
        onlyToChunks: { type: 'integer' },
      },
    },
    added: { type: 'array', items: CHANGE },
    removed: { type: 'array', items: CHANGE },
    modified: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          path: { type: 'string' },
          typeFrom: { type: 'string' },
          typeTo: { type: 'string' },
          sizeFrom: { type: 'integer' },
          sizeTo: { type: 'integer' },
          sizeDelta: { type: 'integer' },
          sharedBytes: { type: ['integer', 'null'] },
          metadataOnly: { type: 'boolean' },
        },
        required: ['path', 'typeFrom', 'typeTo', 'sizeFrom', 'sizeTo', 'sizeDelta', 'sharedBytes', 'metadataOnly'],
      },
    },
    renamed: {
      type: 'array',
      items: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' }, size: { type: 'integer' } }, required: ['from', 'to', 'size'] },
    },
    truncated: { type: 'boolean' },
    links: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' } } },
  },
  required: ['from', 'to', 'comparison', 'summary', 'chunks', 'added', 'removed', 'modified', 'renamed', 'truncated'],
} as const;

/** The diff document of two archive versions with every list cut to `keep` entries (counts stay whole). */
function diffDocument(from: ArchiveLease, to: ArchiveLease, d: DiffReport, keep: number) {
  const files = (xs: Array<{ type: string; size: number }>) => xs.reduce((n, x) => n + (x.type === 'file' ? x.size : 0), 0);
  const c = d.chunks;
  return {
    from: from.name,
    to: to.name,
    comparison: d.comparison,
    summary: {
      added: d.added.length,
      removed: d.removed.length,
      modified: d.modified.length,
      renamed: d.renamed.length,
      unchanged: d.unchanged,
      addedBytes: files(d.added),
      removedBytes: files(d.removed),
      logicalSizeFrom: from.archive.root.logicalSize,
      logicalSizeTo: to.archive.root.logicalSize,
    },
    chunks: {
      comparable: c.comparable,
      sharedBytes: c.sharedBytes,
      onlyFromBytes: c.onlyABytes,
      onlyToBytes: c.onlyBBytes,
      sharedChunks: c.sharedChunks,
      onlyFromChunks: c.onlyAChunks,
      onlyToChunks: c.onlyBChunks,
    },
    added: d.added.slice(0, keep),
    removed: d.removed.slice(0, keep),
    modified: d.modified.slice(0, keep).map((m) => ({
      path: m.path,
      typeFrom: m.typeA,
      typeTo: m.typeB,
      sizeFrom: m.sizeA,
      sizeTo: m.sizeB,
      sizeDelta: m.sizeB - m.sizeA,
      sharedBytes: m.sharedBytes,
      metadataOnly: m.metadataOnly,
    })),
    renamed: d.renamed.slice(0, keep),
    truncated: [d.added, d.removed, d.modified, d.renamed].some((l) => l.length > keep),
    links: { from: archiveUrlPath(from.name), to: archiveUrlPath(to.name) },
  };
}

type DiffDocument = ReturnType<typeof diffDocument>;

/** The first direct base of `lease` that lies in the storage root, by name. */
function directBaseName(ctx: GatewayContext, lease: ArchiveLease): string {
  for (const b of lease.archive.info().bases) {
    if (!b.direct || !b.url) continue;
    const name = ctx.registry.archiveNameOfUrl(b.url);
    if (name) return name;
  }
  throw new HexzError('INVALID_ARGUMENT', `archive "${lease.name}" has no base in the storage root: name one with from=NAME`, { archive: lease.name });
}

/** The diff route. */
export const diffRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  const { config, registry } = ctx;
  // Whole documents at the largest page size; a smaller `limit` cuts them further.
  const cache = new LRUCache<string, Promise<DiffDocument>>({ max: DIFF_CACHE_ENTRIES });

  const compute = (from: ArchiveLease, to: ArchiveLease): Promise<DiffDocument> => {
    const key = `${from.id}\n${to.id}`;
    let p = cache.get(key);
    if (!p) {
      p = diffArchives(from.archive, to.archive, { contentBudgetBytes: DIFF_CONTENT_BUDGET_BYTES }).then((d) => diffDocument(from, to, d, config.maxPageSize));
      // Failures are not remembered: the next request tries again.
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return p;
  };

  app.get<{ Querystring: { from?: string; to: string; limit?: number } }>(
    '/v1/diff',
    {
      config: { route: 'diff' },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string', minLength: 1, maxLength: 4096 },
            to: { type: 'string', minLength: 1, maxLength: 4096 },
            limit: { type: 'integer', minimum: 1, maximum: config.maxPageSize },
          },
          required: ['to'],
          additionalProperties: false,
        },
        response: { 200: DIFF_SCHEMA, ...errorResponses(403, 422, 501) },
      },
    },
    async (request) => {
      const toName = checkArchiveName(request.query.to);
      const fromName = request.query.from === undefined ? undefined : checkArchiveName(request.query.from);
      const keep = request.query.limit ?? config.defaultPageSize;
      return withArchiveRetry(registry, async (acquire) => {
        const to = await acquire(toName);
        const from = await acquire(fromName ?? directBaseName(ctx, to));
        try {
          const doc = await compute(from, to);
          const cut = <T>(xs: T[]) => xs.slice(0, keep);
          const truncated = doc.truncated || [doc.added, doc.removed, doc.modified, doc.renamed].some((l) => l.length > keep);
          return { ...doc, added: cut(doc.added), removed: cut(doc.removed), modified: cut(doc.modified), renamed: cut(doc.renamed), truncated };
        } finally {
          to.release();
          from.release();
        }
      });
    },
  );
};
