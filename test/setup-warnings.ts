/**
 * Every test file runs with this: a FileHandle closed by the garbage collector ("Closing file
 * descriptor N on garbage collection") means some open or error path forgot to close it, which in a
 * long-running gateway or mount leaks descriptors until the GC happens to run. The warning fails the
 * file instead of scrolling by: collected garbage is forced at the end (vitest runs with --expose-gc)
 * so a leak shows up whether or not a collection happened during the tests.
 */
import { promises as fs } from 'node:fs';
import { afterAll, expect } from 'vitest';

// Where each open FileHandle was opened, by descriptor, so a leak names the code that opened it.
const openedAt = new Map<number, string>();
const open = fs.open.bind(fs);
fs.open = (async (...args: Parameters<typeof fs.open>) => {
  const fh = await open(...args);
  const fd = fh.fd;
  openedAt.set(fd, `${String(args[0])}\n${new Error().stack?.split('\n').slice(2, 9).join('\n')}`);
  const close = fh.close.bind(fh);
  fh.close = () => {
    openedAt.delete(fd);
    return close();
  };
  return fh;
}) as typeof fs.open;

const leaked: string[] = [];
process.on('warning', (w) => {
  const m = /Closing file descriptor (\d+) on garbage collection/.exec(w.message);
  if (m) leaked.push(`${w.message}; opened at ${openedAt.get(Number(m[1])) ?? '(unknown)'}`);
});

afterAll(async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    // FileHandle finalizers warn from a later turn of the event loop.
    await new Promise((r) => setTimeout(r, 20));
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(leaked, 'file handles closed by the garbage collector (an open or error path does not close them)').toEqual([]);
});
