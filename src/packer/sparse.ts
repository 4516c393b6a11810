/**
 * Data and hole regions of a sparse file, from lseek(SEEK_DATA / SEEK_HOLE), so the packer can skip
 * holes instead of reading gigabytes of zeros (reading a hole makes the kernel fill page cache with
 * zero pages: a 10 GiB sparse file would take ~20 s to read, and ~0.1 s to map).
 *
 * Node has no lseek binding; `fs-ext` (an optional native dependency) provides it. Without it, or on
 * filesystems without SEEK_DATA, the whole file is one data region and is read as usual.
 */
import { createRequire } from 'node:module';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

type SeekFn = (fd: number, offset: number, whence: number, cb: (err: NodeJS.ErrnoException | null, pos: number) => void) => void;

let seekFn: SeekFn | null | undefined;

function loadSeek(): SeekFn | null {
  if (seekFn === undefined) {
    try {
      const require = createRequire(import.meta.url);
      seekFn = (require('fs-ext') as { seek: SeekFn }).seek;
    } catch {
      seekFn = null;
    }
  }
  return seekFn;
}

function seek(fn: SeekFn, fd: number, offset: number, whence: number): Promise<number | 'none' | 'unsupported'> {
  return new Promise((resolve) =>
    fn(fd, offset, whence, (err, pos) => {
      if (!err) resolve(pos);
      else resolve(err.code === 'ENXIO' ? 'none' : 'unsupported');
    }),
  );
}

export interface Region {
  start: number;
  end: number;
  hole: boolean;
}

/** Regions of `[0, size)`; holes only where the filesystem reports them. */
export async function* fileRegions(fd: number, size: number, sparse: boolean): AsyncGenerator<Region> {
  const fn = sparse ? loadSeek() : null;
  if (!fn) {
    if (size > 0) yield { start: 0, end: size, hole: false };
    return;
  }
  let pos = 0;
  while (pos < size) {
    const data = await seek(fn, fd, pos, SEEK_DATA);
    if (data === 'unsupported') {
      yield { start: pos, end: size, hole: false };
      return;
    }
    const dataStart = data === 'none' ? size : Math.min(data, size);
    if (dataStart > pos) {
      yield { start: pos, end: dataStart, hole: true };
      pos = dataStart;
      if (pos >= size) return;
    }
    const hole = await seek(fn, fd, pos, SEEK_HOLE);
    const dataEnd = typeof hole === 'number' ? Math.min(Math.max(hole, pos + 1), size) : size;
    yield { start: pos, end: dataEnd, hole: false };
    pos = dataEnd;
  }
}
