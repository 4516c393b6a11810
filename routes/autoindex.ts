/**
 * `GET|HEAD /v1/archives/NAME/files/DIR/` (a URL under `/files/` ending in `/`): the directory as an
 * HTML index in the shape of nginx's autoindex (src/gateway/autoindex.ts), for GDAL `/vsicurl/`,
 * `wget -r` and browsers. `/tree` stays the JSON API. Routing sends every such URL here (the
 * `files-index` view, see `routeViewOfUrl`), so the content route never handles directories.
 *
 * The listing is read page by page from the file table and streamed: memory stays one page whatever
 * the directory's size. Symlinks are listed as what they lead to (like nginx, which `stat`s them);
 * one that leads nowhere or outside the archive is left out, since following it would be a 404.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { HexzError, isHexzError } from '../src/errors.js';
import type { FileEntry } from '../src/format/file-table.js';
import { autoindexHead, autoindexRow, autoindexTail, type AutoindexEntry } from '../src/gateway/autoindex.js';
import { Deadline, errorResponses, withArchiveRetry, type GatewayContext, type RoutePluginOptions } from '../src/gateway/http.js';
import { DIRECTORY_INDEX_VIEW, parseArchiveUrl, rawPathOf } from '../src/gateway/names.js';
import type { ArchiveLease } from '../src/gateway/registry.js';

/** Entries read from the file table per step of the stream (one index page holds a few hundred to thousands). */
export const AUTOINDEX_PAGE_ENTRIES = 1000;

/** Our own HTML with names in it: no script, no style, no plugin may run, whatever a name contains. */
export const AUTOINDEX_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; sandbox";

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The line of one entry, symlinks followed; undefined for a symlink that leads nowhere. */
async function rowEntry(lease: ArchiveLease, e: FileEntry): Promise<AutoindexEntry | undefined> {
  let t = e;
  if (e.type === 'symlink') {
    try {
      t = await lease.archive.resolve(e.path);
    } catch (err) {
      if (isHexzError(err, 'PATH_NOT_FOUND') || isHexzError(err, 'INVALID_ARGUMENT')) return undefined;
      throw err;
    }
  }
  return { name: nameOf(e.path), directory: t.type === 'directory', size: t.type === 'file' ? t.size : 0, mtimeMs: Number(t.mtimeNs / 1_000_000n) };
}

/** The page after its head: the first listing page, later pages, then the tail. */
async function* pageBody(lease: ArchiveLease, dir: string, first: { entries: FileEntry[]; cursor?: string }): AsyncGenerator<Buffer> {
  let page = first;
  for (;;) {
    let out = '';
    for (const e of page.entries) {
      const row = await rowEntry(lease, e);
      if (row) out += autoindexRow(row);
    }
    if (out) yield Buffer.from(out, 'utf8');
    if (!page.cursor) break;
    page = await lease.archive.list(dir, { cursor: page.cursor, limit: AUTOINDEX_PAGE_ENTRIES });
  }
  yield Buffer.from(autoindexTail(), 'utf8');
}

/** The directory (symlinks followed) and its first listing page, from one leased archive version. */
function openListing(ctx: GatewayContext, name: string, path: string, deadline: Deadline) {
  const race = <P>(p: Promise<P>) => deadline.race(p);
  return withArchiveRetry(
    ctx.registry,
    async (acquire) => {
      const lease = await acquire(name);
      const dir = await race(lease.archive.resolve(path));
      if (dir.type !== 'directory') throw new HexzError('NOT_A_DIRECTORY', `not a directory: ${path} (its URL must not end in /)`, { archive: name, path });
      const first = await race(lease.archive.list(dir.path, { limit: AUTOINDEX_PAGE_ENTRIES }));
      return { lease, dir: dir.path, first };
    },
    race,
  );
}

/** The directory index route. */
export const autoindexRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v1/archives/*',
    exposeHeadRoute: false,
    constraints: { archiveView: DIRECTORY_INDEX_VIEW },
    config: { route: 'autoindex' },
    // Query strings are ignored, as nginx does (browsers and crawlers add sort parameters such as ?C=M;O=A).
    schema: { response: errorResponses(403, 422) },
    handler: async (request, reply) => {
      const target = parseArchiveUrl(request.url);
      const deadline = new Deadline(ctx.config.requestTimeoutMs, `${target.name}/files/${target.path}`);
      let listing: Awaited<ReturnType<typeof openListing>>;
      try {
        listing = await openListing(ctx, target.name, target.path, deadline);
      } finally {
        deadline.clear();
      }
      reply.headers({
        'content-type': 'text/html; charset=utf-8',
        'cache-control': ctx.config.cacheControl,
        'x-content-type-options': 'nosniff',
        'content-security-policy': AUTOINDEX_CSP,
      });
      if (request.method === 'HEAD') {
        listing.lease.release();
        return reply.send();
      }
      // The URL was validated by parseArchiveUrl, so it decodes.
      const head = autoindexHead(decodeURIComponent(rawPathOf(request.url)), target.path !== '');
      // Released when the socket is done with the body (complete or cut; release is idempotent).
      reply.raw.once('close', listing.lease.release);
      const body = (async function* () {
        yield Buffer.from(head, 'utf8');
        yield* pageBody(listing.lease, listing.dir, listing.first);
      })();
      return reply.send(Readable.from(body, { objectMode: false }));
    },
  });
};
