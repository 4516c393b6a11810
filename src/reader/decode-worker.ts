/**
 * A decode worker (./decode-pool.ts): decodes and verifies the chunks of one extent per job, straight
 * into the shared memory the job names (the cache arena, or a buffer of the read's own), and answers
 * with success or the typed error of the first bad chunk. It reads no storage and holds no state but
 * the keys of the encrypted archives it was given.
 */
import { parentPort } from 'node:worker_threads';
import type { ArchiveKeys } from '../crypto/keys.js';
import { HexzError, toHexzError } from '../errors.js';
import { decodeChunkInto, idFunction } from './decode.js';
import { isExitRequest } from '../worker-exit.js';
import type { DecodeJob, DecodeReply, KeysMessage } from './decode-pool.js';

/** Views of the shared buffers jobs write to (the arena's data comes back with every job). */
const views = new WeakMap<SharedArrayBuffer, Uint8Array>();
const keysById = new Map<number, { keys: ArchiveKeys; idOf: (p: Uint8Array) => Uint8Array }>();
const plainIdOf = idFunction(undefined);

parentPort!.on('message', (msg: DecodeJob | KeysMessage | string) => {
  if (typeof msg === 'string') return void isExitRequest(msg, parentPort!);
  if (msg.t === 'keys') {
    keysById.set(msg.id, { keys: msg.keys, idOf: idFunction(msg.keys) });
    return;
  }
  let reply: DecodeReply;
  try {
    decodeJob(msg);
    reply = { job: msg.job };
  } catch (err) {
    const e = toHexzError(err);
    reply = { job: msg.job, error: { code: e.code, message: e.message, context: e.context } };
  }
  parentPort!.postMessage(reply);
});

function decodeJob(job: DecodeJob): void {
  const k = job.keys ? keysById.get(job.keys) : undefined;
  if (job.keys && !k) throw new HexzError('INTERNAL', `decode worker: no keys registered as ${job.keys}`);
  const idOf = k ? k.idOf : plainIdOf;
  let out = views.get(job.out);
  if (!out) views.set(job.out, (out = new Uint8Array(job.out)));
  const input = new Uint8Array(job.input, job.inputOffset, job.inputLength);
  for (let i = 0; i < job.count; i++) {
    const at = job.storedAt[i];
    const stored = input.subarray(at, at + job.storedLength[i]);
    const dst = out.subarray(job.outAt + job.rawAt[i], job.outAt + job.rawAt[i] + job.rawLength[i]);
    const id = job.ids.subarray(i * 32, i * 32 + 32);
    decodeChunkInto(stored, { id, codec: job.codec[i] }, dst, idOf, k?.keys, { ...job.context, offset: job.offsets[i] });
  }
}
