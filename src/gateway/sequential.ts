/**
 * Sequential readers across requests: a client that reads a file in consecutive ranges (a download
 * manager, GDAL scanning a raster, a video player, `aws s3 cp` of a part) gets the next ranges
 * prefetched into the shared cache while this one is sent, as a FUSE mount does for `cat`. Without
 * it every cold range waited for its own storage read and decode, one after the other.
 *
 * One detector per (client address, archive version, path), tolerant of reordering (a client reading
 * over several keep-alive connections has its ranges answered out of order); at most `MAX_TRACKED`
 * detectors (least recently used dropped), so a crowd of random readers costs a map entry each and
 * prefetches nothing. Prefetches run within the cache's prefetch allowance (cache/block-cache.ts).
 */
import { LRUCache } from 'lru-cache';
import { ReorderedReadahead } from '../../cache/readahead.js';

/** Detectors kept per gateway thread: enough for thousands of concurrent sequential readers. */
export const MAX_TRACKED = 4096;

export class SequentialReaders {
  private readonly detectors = new LRUCache<string, ReorderedReadahead>({ max: MAX_TRACKED });

  /**
   * Record that `client` read `[start, start + length)` of `path` in archive version `version`;
   * returns the range of that file to prefetch now (clamped to `size`), or undefined.
   */
  observe(client: string, version: string, path: string, start: number, length: number, size: number): { start: number; end: number } | undefined {
    const key = `${client}\0${version}\0${path}`;
    let detector = this.detectors.get(key);
    if (!detector) this.detectors.set(key, (detector = new ReorderedReadahead()));
    const ahead = detector.observe(start, length);
    if (!ahead) return undefined;
    const end = Math.min(ahead.end, size);
    return end > ahead.start ? { start: ahead.start, end } : undefined;
  }
}
