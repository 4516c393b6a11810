/**
 * Packer worker thread: for each job, hashes every chunk and compresses (and seals) those whose id
 * no thread has seen before (the shared `SeenSet`, which also holds the bases' ids), in one pass, so
 * a worker never waits for the main thread between hashing and compressing. Duplicates — most of a
 * thin delta — are never compressed.
 *
 * Job bytes live in shared job slots (SharedArrayBuffers handed over once, in the `init` message that
 * configures the thread), so messages carry only a slot number, chunk ranges and results — no buffer
 * crosses threads:
 *   main → { type: 'init', config }                  codec, level, keys, the slots' buffers, the seen set
 *   main → { type: 'job', seq, slot, ranges }         ranges = [start, end, start, end, …] in the slot
 *   main → { type: 'files', seq, slot, sources, sizes } a batch of small files to read and chunk here
 *                                                      first (./file-batch-worker.ts)
 *   main ← { type: 'done', seq, ids, zero, lengths, codecs, total, overflow?, batch? }
 *   main ← { type: 'error', seq, message }
 * ids = 32 bytes per chunk; zero[i] = 1 for all-zero chunks (holes); lengths[i] = stored bytes of
 * chunk i in the slot's output (in chunk order), 0 when it was not compressed here (a hole, or an id
 * already seen). `overflow` (rare: the job did not fit its output slot) carries the encoded bytes.
 * `batch` (file batches only): the chunk ranges cut here, per file its chunks and bytes read, its
 * content digest, and the files that could not be read.
 */
import { parentPort } from 'node:worker_threads';
import { isExitRequest } from '../worker-exit.js';
import { createChunker, type Chunker, type ChunkingParams } from '../chunker/fastcdc.js';
import type { WasmMemory } from '../chunker/wasm.js';
import { codecById } from '../codecs/index.js';
import type { ArchiveKeys } from '../crypto/keys.js';
import { chunkIdFunction, encodeChunkInto, isAllZero } from '../format/chunk.js';
import { HASH_BYTES } from '../hash.js';
import { SeenSet } from './seen-set.js';
import { batchDigests, readBatch, type FileFailure } from './file-batch-worker.js';

export interface WorkerConfig {
  codec: number;
  level: number;
  keys?: ArchiveKeys;
  /** Job slot inputs (raw bytes: `capacity` bytes at each offset of one shared buffer, the chunker's scan memory). */
  input: { buffer: SharedArrayBuffer; offsets: number[]; capacity: number };
  /** The scan memory that holds the input slots, and the chunking parameters: file batches are cut here. */
  memory: WasmMemory;
  chunking: ChunkingParams;
  /** Job slot outputs (encoded bytes), shared with the main thread. */
  outputs: SharedArrayBuffer[];
  /** The shared set of chunk ids seen so far (./seen-set.ts). */
  seen: SharedArrayBuffer;
}

export type WorkerRequest =
  | { type: 'init'; config: WorkerConfig }
  | { type: 'job'; seq: number; slot: number; ranges: Uint32Array }
  | { type: 'files'; seq: number; slot: number; sources: string[]; sizes: Float64Array };

/** What a worker made of a file batch, beyond the chunks' ids and stored bytes. */
export interface BatchReply {
  ranges: Uint32Array;
  /** Per file: chunks (-1: failed, see `failures`), bytes read. */
  files: Float64Array;
  /** 32 bytes per file. */
  digests: Uint8Array;
  failures: FileFailure[];
}

export type WorkerReply =
  | { type: 'done'; seq: number; ids: Uint8Array; zero: Uint8Array; lengths: Uint32Array; codecs: Uint8Array; total: number; overflow?: Uint8Array; batch?: BatchReply }
  | { type: 'error'; seq: number; message: string };

// Set by the `init` message that precedes every job (the thread starts before its configuration is known).
let config: WorkerConfig;
let idOf: (plain: Uint8Array) => Uint8Array;
let inputs: Buffer[];
let outputs: Uint8Array[];
let seen: SeenSet;
let chunker: Chunker | undefined;

function init(c: WorkerConfig): void {
  config = c;
  idOf = chunkIdFunction(c.keys);
  inputs = c.input.offsets.map((o) => Buffer.from(c.input.buffer, o, c.input.capacity));
  outputs = c.outputs.map((b) => new Uint8Array(b));
  seen = new SeenSet(c.seen);
  // Over the same scan memory as the main thread's chunker (the gear table it writes is the same).
  chunker = createChunker(c.chunking, { memory: c.memory });
  // Load the codec now, not inside the first job.
  if (c.codec !== 0) codecById(c.codec);
}

function runBatch(seq: number, slot: number, sources: string[], sizes: Float64Array): WorkerReply {
  const batch = readBatch(inputs[slot], chunker!, sources, sizes);
  const reply = runJob(seq, slot, batch.ranges);
  if (reply.type !== 'done') return reply;
  reply.batch = { ranges: batch.ranges, files: batch.files, digests: batchDigests(batch, reply.ids, reply.zero), failures: batch.failures };
  return reply;
}

function runJob(seq: number, slot: number, ranges: Uint32Array): WorkerReply {
  const data = inputs[slot];
  const n = ranges.length / 2;
  const ids = new Uint8Array(n * HASH_BYTES);
  const zero = new Uint8Array(n);
  const lengths = new Uint32Array(n);
  const codecs = new Uint8Array(n);
  let out: Uint8Array = outputs[slot];
  let overflow: Uint8Array | undefined;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const chunk = data.subarray(ranges[2 * i], ranges[2 * i + 1]);
    if (isAllZero(chunk)) {
      zero[i] = 1;
      continue;
    }
    const id = idOf(chunk);
    ids.set(id, i * HASH_BYTES);
    if (!seen.add(SeenSet.keyOf(id))) continue;
    let r = encodeChunkInto(out.subarray(at), chunk, id, config.codec, config.level, config.keys);
    if (!r) {
      // Did not fit the slot (incompressible data plus sealing overhead): continue in a private buffer.
      const bigger = new Uint8Array(Math.max(out.byteLength * 2, at + 2 * chunk.byteLength + 4096));
      bigger.set(out.subarray(0, at));
      out = overflow = bigger;
      r = encodeChunkInto(out.subarray(at), chunk, id, config.codec, config.level, config.keys)!;
    }
    lengths[i] = r.length;
    codecs[i] = r.codec;
    at += r.length;
  }
  return { type: 'done', seq, ids, zero, lengths, codecs, total: at, overflow: overflow?.subarray(0, at) };
}

parentPort!.on('message', (msg: WorkerRequest | string) => {
  if (typeof msg === 'string') return void isExitRequest(msg, parentPort!);
  if (msg.type === 'init') return init(msg.config);
  let reply: WorkerReply;
  try {
    reply = msg.type === 'files' ? runBatch(msg.seq, msg.slot, msg.sources, msg.sizes) : runJob(msg.seq, msg.slot, msg.ranges);
  } catch (err) {
    parentPort!.postMessage({ type: 'error', seq: msg.seq, message: (err as Error).message });
    return;
  }
  const transfer: ArrayBuffer[] = [];
  if (reply.type === 'done') {
    transfer.push(reply.ids.buffer as ArrayBuffer, reply.zero.buffer as ArrayBuffer, reply.lengths.buffer as ArrayBuffer, reply.codecs.buffer as ArrayBuffer);
    if (reply.overflow) transfer.push(reply.overflow.buffer as ArrayBuffer);
    if (reply.batch) transfer.push(reply.batch.ranges.buffer as ArrayBuffer, reply.batch.files.buffer as ArrayBuffer, reply.batch.digests.buffer as ArrayBuffer);
  }
  parentPort!.postMessage(reply, transfer);
});
