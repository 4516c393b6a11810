import { describe, expect, it } from 'vitest';
import { CODEC_IDS, CodecError, codecById, codecByName, type CodecName } from '@hexz/src/codecs/index.js';
import { randomBytesSeeded, textBytes } from '../helpers/data.js';

/** The codec conformance suite: every codec must pass all of it. */
describe.each(Object.keys(CODEC_IDS) as CodecName[])('codec %s', (name) => {
  const codec = codecByName(name);
  const inputs: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['text', textBytes(200_000)],
    ['random', randomBytesSeeded(100_000, 5)],
    ['zeros', Buffer.alloc(256 * 1024)],
  ];

  it.each(inputs)('round-trips %s', (_n, input) => {
    const enc = codec.compress(input, 3);
    const dec = codec.decompress(enc, input.length);
    expect(Buffer.from(dec).equals(input)).toBe(true);
  });

  it('is found by id', () => {
    expect(codecById(codec.id)).toBe(codec);
  });

  it('rejects a wrong raw length with a CodecError (the caller names the structure)', () => {
    const input = textBytes(10_000);
    const enc = codec.compress(input, 3);
    let err: unknown;
    try {
      codec.decompress(enc, input.length + 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CodecError);
    expect((err as Error).message).not.toMatch(/^corrupt/);
  });

  it('rejects garbage with a CodecError, never a crash', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const junk = randomBytesSeeded(100 + seed * 37, seed);
      try {
        const out = codec.decompress(junk, 5000);
        expect(out.byteLength).toBe(5000); // only `none` may accept (and only with the right length)
      } catch (e) {
        expect(e).toBeInstanceOf(CodecError);
      }
    }
  });

  it('refuses implausible sizes without allocating them', () => {
    expect(() => codec.decompress(Buffer.from([1, 2, 3, 4, 5]), 2 ** 31)).toThrow();
  });
});

describe('codec registry', () => {
  it('rejects unknown names and ids', () => {
    expect(() => codecByName('brotli')).toThrow(/unknown compression/);
    expect(() => codecById(9)).toThrow(/unknown codec/);
  });
});
