/**
 * Chunk and frame codecs (docs/format.md, section 6), in a registry whose native modules load on first
 * use: a command that never decompresses lz4 never loads lz4-napi.
 *
 * Why these libraries: Node 20's zlib has no zstd, so `zstd-napi` (the reference C library, compiled
 * by node-gyp) provides it with caller-owned buffers, which lets us decompress straight into a buffer
 * of the known raw length. `lz4-napi` (lz4_flex) ships prebuilt binaries and its block format with a
 * size prefix is exactly what section 6 specifies.
 */
import { createRequire } from 'node:module';
import { HexzError, corrupt } from '../errors.js';

export const CODEC_IDS = { none: 0, zstd: 1, lz4: 2 } as const;
export type CodecName = keyof typeof CODEC_IDS;
export type CodecId = (typeof CODEC_IDS)[CodecName];

/** Default zstd level: level 3 is zstd's own default, the best speed/ratio point for 64 KiB chunks. */
export const DEFAULT_ZSTD_LEVEL = 3;

export interface Codec {
  readonly id: CodecId;
  readonly name: CodecName;
  /** Encode `src`. The result is a fresh buffer the caller owns. */
  compress(src: Uint8Array, level?: number): Uint8Array;
  /**
   * Encode `src` into `dst` (hot path of the packer: no allocation). Returns the bytes written, or -1
   * when `dst` may be too small (then use `compress`).
   */
  compressInto(dst: Uint8Array, src: Uint8Array, level?: number): number;
  /** Decode `src`, which must expand to exactly `rawLength` bytes (else `CORRUPT`). */
  decompress(src: Uint8Array, rawLength: number): Uint8Array;
  /**
   * Decode `src` into `dst`, which it must fill exactly (`dst.byteLength` is the raw length; else
   * `CORRUPT`): the readers' hot path, decoding straight into cache memory.
   */
  decompressInto(dst: Uint8Array, src: Uint8Array): void;
}

const require = createRequire(import.meta.url);

/**
 * What a codec says when its input does not decode to the expected bytes: only the detail. The caller
 * knows which structure it was decoding (a chunk, the root, an index page) and turns it into one
 * `CORRUPT` error naming that structure, with one prefix.
 */
export class CodecError extends Error {
  override name = 'CodecError';
}
const codecError = (detail: string) => new CodecError(detail);

/** Upper bound on what any codec may be asked to produce; guards hostile size prefixes. */
const MAX_RAW_LENGTH = 1 << 30;

const none: Codec = {
  id: 0,
  name: 'none',
  compress: (src) => src,
  compressInto(dst, src) {
    if (dst.byteLength < src.byteLength) return -1;
    dst.set(src);
    return src.byteLength;
  },
  decompress(src, rawLength) {
    if (src.byteLength !== rawLength) {
      throw codecError(`stored ${src.byteLength} bytes, expected ${rawLength} (codec none)`);
    }
    return src;
  },
  decompressInto(dst, src) {
    if (src.byteLength !== dst.byteLength) {
      throw codecError(`stored ${src.byteLength} bytes, expected ${dst.byteLength} (codec none)`);
    }
    dst.set(src);
  },
};

interface ZstdCCtx {
  compress(dst: Uint8Array, src: Uint8Array, level: number): number;
  compress2(dst: Uint8Array, src: Uint8Array): number;
  setParameter(param: number, value: number): void;
}

interface ZstdBinding {
  CCtx: new () => ZstdCCtx;
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  CParameter: Record<'compressionLevel' | 'windowLog' | 'hashLog' | 'strategy', number>;
  compressBound(n: number): number;
}

/**
 * Chunks are small (16–256 KiB), and for inputs that small zstd's level 3 uses its `dfast` strategy
 * with tables sized for them. Its `fast` strategy with a 128K-entry hash table compresses chunk-sized
 * inputs 1.25–1.4× faster at 0.1–0.3% worse ratio (measured on the benchmark's mixed data in 64 KiB
 * blocks, bench/README.md): that is what the default level 3 uses. Other levels are zstd's own.
 * Decoding is unaffected — it is an ordinary zstd frame either way.
 */
const TUNED_LEVELS: Record<number, { strategy: number; hashLog: number; windowLog: number }> = {
  3: { strategy: 1, hashLog: 17, windowLog: 17 },
};

function makeZstd(): Codec {
  const binding = require('zstd-napi/binding') as ZstdBinding;
  const cctx = new binding.CCtx();
  const dctx = new binding.DCtx();
  const tuned = new Map<number, ZstdCCtx>();
  /** Compress with the level's parameters: a context per tuned level, set up once. */
  const compressWith = (dst: Uint8Array, src: Uint8Array, level: number): number => {
    const params = TUNED_LEVELS[level];
    if (!params) return cctx.compress(dst, src, level);
    let ctx = tuned.get(level);
    if (!ctx) {
      ctx = new binding.CCtx();
      const P = binding.CParameter;
      ctx.setParameter(P.compressionLevel, level);
      ctx.setParameter(P.strategy, params.strategy);
      ctx.setParameter(P.hashLog, params.hashLog);
      ctx.setParameter(P.windowLog, params.windowLog);
      tuned.set(level, ctx);
    }
    return ctx.compress2(dst, src);
  };
  let scratch = Buffer.allocUnsafe(0);
  return {
    id: 1,
    name: 'zstd',
    compress(src, level = DEFAULT_ZSTD_LEVEL) {
      const bound = binding.compressBound(src.byteLength);
      if (scratch.byteLength < bound) scratch = Buffer.allocUnsafe(Math.max(bound, 1 << 18));
      const n = compressWith(scratch, src, level);
      // Deliberate copy: the scratch buffer is reused for the next chunk.
      return Buffer.from(scratch.subarray(0, n));
    },
    compressInto(dst, src, level = DEFAULT_ZSTD_LEVEL) {
      if (dst.byteLength < binding.compressBound(src.byteLength)) return -1;
      return compressWith(dst, src, level);
    },
    decompress(src, rawLength) {
      checkRawLength(rawLength);
      const dst = Buffer.allocUnsafe(rawLength);
      let n: number;
      try {
        n = dctx.decompress(dst, src);
      } catch (err) {
        throw codecError(`zstd: ${(err as Error).message}`);
      }
      if (n !== rawLength) throw codecError(`zstd produced ${n} bytes, expected ${rawLength}`);
      return dst;
    },
    decompressInto(dst, src) {
      checkRawLength(dst.byteLength);
      let n: number;
      try {
        // zstd stops at dst's end: a frame claiming more fails here instead of overrunning.
        n = dctx.decompress(dst, src);
      } catch (err) {
        throw codecError(`zstd: ${(err as Error).message}`);
      }
      if (n !== dst.byteLength) throw codecError(`zstd produced ${n} bytes, expected ${dst.byteLength}`);
    },
  };
}

interface Lz4Binding {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}

function makeLz4(): Codec {
  const lz4 = require('lz4-napi') as Lz4Binding;
  return {
    id: 2,
    name: 'lz4',
    compress(src) {
      return lz4.compressSync(Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength));
    },
    compressInto(dst, src) {
      // lz4-napi has no caller-buffer API: compress, then copy.
      const out = this.compress(src);
      if (out.byteLength > dst.byteLength) return -1;
      dst.set(out);
      return out.byteLength;
    },
    decompress(src, rawLength) {
      checkRawLength(rawLength);
      // Check the size prefix ourselves: the library would allocate whatever a corrupt prefix says.
      if (src.byteLength < 4) throw codecError('lz4 data shorter than its size prefix');
      const prefix = new DataView(src.buffer, src.byteOffset, 4).getUint32(0, true);
      if (prefix !== rawLength) throw codecError(`lz4 size prefix ${prefix}, expected ${rawLength}`);
      let out: Buffer;
      try {
        out = lz4.uncompressSync(src);
      } catch (err) {
        throw codecError(`lz4: ${(err as Error).message}`);
      }
      if (out.byteLength !== rawLength) throw codecError(`lz4 produced ${out.byteLength} bytes, expected ${rawLength}`);
      return out;
    },
    decompressInto(dst, src) {
      // lz4-napi has no caller-buffer API: decode (size prefix checked first), then copy.
      dst.set(this.decompress(src, dst.byteLength));
    },
  };
}

function checkRawLength(rawLength: number): void {
  if (!Number.isInteger(rawLength) || rawLength < 0 || rawLength > MAX_RAW_LENGTH) {
    throw codecError(`implausible raw length ${rawLength}`);
  }
}

const factories: Record<CodecId, () => Codec> = { 0: () => none, 1: makeZstd, 2: makeLz4 };
const loaded = new Map<CodecId, Codec>();

/** The codec with this id; `CORRUPT` for ids the format does not define. */
export function codecById(id: number): Codec {
  let codec = loaded.get(id as CodecId);
  if (!codec) {
    const factory = factories[id as CodecId];
    if (!factory) throw corrupt('chunk reference', `unknown codec id ${id}`);
    codec = factory();
    loaded.set(id as CodecId, codec);
  }
  return codec;
}

/** The codec with this name; `INVALID_ARGUMENT` for unknown names. */
export function codecByName(name: string): Codec {
  if (!(name in CODEC_IDS)) {
    throw new HexzError('INVALID_ARGUMENT', `unknown compression "${name}" (use zstd, lz4 or none)`);
  }
  return codecById(CODEC_IDS[name as CodecName]);
}
