/**
 * Packer worker thread: hashes chunks, then encodes (compresses, seals) the ones the main thread says
 * are new. Two phases per job so duplicate chunks — most of a thin delta — are never compressed.
 *
 * Job bytes live in shared job slots (SharedArrayBuffers handed over once in `workerData`), so
 * messages carry only a slot number, chunk ranges and results — no buffer crosses threads:
 *   main → { type: 'hash', seq, slot, ranges }       ranges = [start, end, start, end, …] in the slot
 *   main ← { type: 'hashed', seq, ids, zero }         ids = 32 bytes per chunk; zero[i] = 1 for holes
 *   main → { type: 'encode', seq, indices }           chunks to encode, in order, into the slot's output
 *   main ← { type: 'encoded', seq, lengths, codecs, total, overflow? }
 *   main ← { type: 'error', seq, phase, message }
 * `overflow` (rare: the job did not fit its output slot) carries the encoded bytes instead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ArchiveKeys } from '../crypto/keys.js';
import { chunkIdFunction, encodeChunkInto, isAllZero } from '../format/chunk.js';
import { HASH_BYTES } from '../hash.js';

export interface WorkerConfig {
  codec: number;
  level: number;
  keys?: ArchiveKeys;
  /** Job slot inputs (raw bytes) and outputs (encoded bytes), shared with the main thread. */
  inputs: SharedArrayBuffer[];
  outputs: SharedArrayBuffer[];
}

export type WorkerRequest =
  | { type: 'hash'; seq: number; slot: number; ranges: Uint32Array }
  | { type: 'encode'; seq: number; indices: Uint32Array };

export type WorkerReply =
  | { type: 'hashed'; seq: number; ids: Uint8Array; zero: Uint8Array }
  | { type: 'encoded'; seq: number; lengths: Uint32Array; codecs: Uint8Array; total: number; overflow?: Uint8Array }
  | { type: 'error'; seq: number; phase: WorkerRequest['type']; message: string };

const config = workerData as WorkerConfig;
const idOf = chunkIdFunction(config.keys);
const inputs = config.inputs.map((b) => Buffer.from(b));
const outputs: Uint8Array[] = config.outputs.map((b) => new Uint8Array(b));
const jobs = new Map<number, { slot: number; ranges: Uint32Array; ids: Uint8Array }>();

function hashJob(seq: number, slot: number, ranges: Uint32Array): WorkerReply {
  const data = inputs[slot];
  const n = ranges.length / 2;
  const ids = new Uint8Array(n * HASH_BYTES);
  const zero = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const chunk = data.subarray(ranges[2 * i], ranges[2 * i + 1]);
    if (isAllZero(chunk)) zero[i] = 1;
    else ids.set(idOf(chunk), i * HASH_BYTES);
  }
  jobs.set(seq, { slot, ranges, ids });
  return { type: 'hashed', seq, ids: ids.slice(), zero };
}

function encodeJob(seq: number, indices: Uint32Array): WorkerReply {
  const job = jobs.get(seq);
  jobs.delete(seq);
  if (!job) throw new Error(`unknown job ${seq}`);
  const data = inputs[job.slot];
  const lengths = new Uint32Array(indices.length);
  const codecs = new Uint8Array(indices.length);
  let out: Uint8Array = outputs[job.slot];
  let overflow: Uint8Array | undefined;
  let at = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const chunk = data.subarray(job.ranges[2 * i], job.ranges[2 * i + 1]);
    const id = job.ids.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
    let r = encodeChunkInto(out.subarray(at), chunk, id, config.codec, config.level, config.keys);
    if (!r) {
      // Did not fit the slot (incompressible data plus sealing overhead): continue in a private buffer.
      const bigger = new Uint8Array(Math.max(out.byteLength * 2, at + 2 * chunk.byteLength + 4096));
      bigger.set(out.subarray(0, at));
      out = overflow = bigger;
      r = encodeChunkInto(out.subarray(at), chunk, id, config.codec, config.level, config.keys)!;
    }
    lengths[k] = r.length;
    codecs[k] = r.codec;
    at += r.length;
  }
  return { type: 'encoded', seq, lengths, codecs, total: at, overflow: overflow?.subarray(0, at) };
}

parentPort!.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = msg.type === 'hash' ? hashJob(msg.seq, msg.slot, msg.ranges) : encodeJob(msg.seq, msg.indices);
  } catch (err) {
    parentPort!.postMessage({ type: 'error', seq: msg.seq, phase: msg.type, message: (err as Error).message });
    return;
  }
  const transfer: ArrayBuffer[] = [];
  if (reply.type === 'hashed') transfer.push(reply.ids.buffer as ArrayBuffer, reply.zero.buffer as ArrayBuffer);
  if (reply.type === 'encoded') {
    transfer.push(reply.lengths.buffer as ArrayBuffer, reply.codecs.buffer as ArrayBuffer);
    if (reply.overflow) transfer.push(reply.overflow.buffer as ArrayBuffer);
  }
  parentPort!.postMessage(reply, transfer);
});
