/**
 * Packer worker thread: hashes chunks, then encodes (compresses, seals) the ones the main thread says
 * are new. Two phases per job so duplicate chunks — most of a thin delta — are never compressed.
 *
 * Protocol (all buffers transferred, never copied):
 *   main → { type: 'hash', seq, buffer, ranges }      ranges = [start, end, start, end, …]
 *   main ← { type: 'hashed', seq, ids, zero }          ids = 32 bytes per chunk; zero[i] = 1 for holes
 *   main → { type: 'encode', seq, indices }            chunks to encode, in order
 *   main ← { type: 'encoded', seq, data, lengths, codecs }
 *   main ← { type: 'error', seq, phase, message, code }
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ArchiveKeys } from '../crypto/keys.js';
import { chunkIdFunction, encodeChunk, isAllZero } from '../format/chunk.js';
import { HASH_BYTES } from '../hash.js';

export interface WorkerConfig {
  codec: number;
  level: number;
  keys?: ArchiveKeys;
}

export type WorkerRequest =
  | { type: 'hash'; seq: number; buffer: ArrayBuffer; ranges: Uint32Array }
  | { type: 'encode'; seq: number; indices: Uint32Array };

export type WorkerReply =
  | { type: 'hashed'; seq: number; ids: Uint8Array; zero: Uint8Array }
  | { type: 'encoded'; seq: number; data: Uint8Array; lengths: Uint32Array; codecs: Uint8Array }
  | { type: 'error'; seq: number; phase: WorkerRequest['type']; message: string; code?: string };

const config = workerData as WorkerConfig;
const idOf = chunkIdFunction(config.keys);
const jobs = new Map<number, { data: Buffer; ranges: Uint32Array; ids: Uint8Array }>();

function hashJob(seq: number, buffer: ArrayBuffer, ranges: Uint32Array): WorkerReply {
  const data = Buffer.from(buffer);
  const n = ranges.length / 2;
  const ids = new Uint8Array(n * HASH_BYTES);
  const zero = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const chunk = data.subarray(ranges[2 * i], ranges[2 * i + 1]);
    if (isAllZero(chunk)) zero[i] = 1;
    else ids.set(idOf(chunk), i * HASH_BYTES);
  }
  jobs.set(seq, { data, ranges, ids });
  return { type: 'hashed', seq, ids: ids.slice(), zero };
}

function encodeJob(seq: number, indices: Uint32Array): WorkerReply {
  const job = jobs.get(seq);
  jobs.delete(seq);
  if (!job) throw new Error(`unknown job ${seq}`);
  const parts: Uint8Array[] = [];
  const lengths = new Uint32Array(indices.length);
  const codecs = new Uint8Array(indices.length);
  let total = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const chunk = job.data.subarray(job.ranges[2 * i], job.ranges[2 * i + 1]);
    const id = job.ids.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
    const enc = encodeChunk(chunk, id, config.codec, config.level, config.keys);
    parts.push(enc.bytes);
    lengths[k] = enc.bytes.byteLength;
    codecs[k] = enc.codec;
    total += enc.bytes.byteLength;
  }
  // One transferable buffer for the whole job instead of one message per chunk.
  const data = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return { type: 'encoded', seq, data, lengths, codecs };
}

parentPort!.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = msg.type === 'hash' ? hashJob(msg.seq, msg.buffer, msg.ranges) : encodeJob(msg.seq, msg.indices);
  } catch (err) {
    parentPort!.postMessage({ type: 'error', seq: msg.seq, phase: msg.type, message: (err as Error).message, code: (err as { code?: string }).code });
    return;
  }
  const transfer: ArrayBuffer[] =
    reply.type === 'hashed' ? [reply.ids.buffer as ArrayBuffer, reply.zero.buffer as ArrayBuffer] : reply.type === 'encoded' ? [reply.data.buffer as ArrayBuffer, reply.lengths.buffer as ArrayBuffer, reply.codecs.buffer as ArrayBuffer] : [];
  parentPort!.postMessage(reply, transfer);
});
