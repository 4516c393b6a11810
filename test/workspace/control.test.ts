/**
 * The control socket of a mounted workspace (src/workspace/overlay/control.ts), over a real Unix
 * socket: warnings reach the client before the answer, in order; a client that interrupts
 * (half-closes) aborts the request and still reads its answer; a client that goes away aborts it
 * too; a request without events gets exactly one line (what a CLI from before events reads).
 */
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '../../src/errors.js';
import { callControl, serveControl, type ControlCall, type ControlRequest } from '../../src/workspace/overlay/control.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let socket: string;
let close: () => Promise<void>;
/** Signals of the requests the server got, by op, so a test can see that its request was aborted. */
const seen = new Map<string, ControlCall>();

/** Until the request is aborted; then ABORTED (like a commit stopped mid-write). */
const untilAborted = (call: ControlCall) =>
  new Promise<never>((_resolve, reject) => call.signal.addEventListener('abort', () => reject(new HexzError('ABORTED', 'aborted')), { once: true }));

beforeAll(async () => {
  tmp = await makeTempDir('hexz-control-');
  socket = path.join(tmp.dir, 'control.sock');
  close = await serveControl(socket, async (req: ControlRequest, call) => {
    seen.set(String(req.op), call);
    if (req.op === 'status') {
      call.warn('first');
      call.warn('second');
      return { big: 2n ** 70n };
    }
    if (req.op === 'commit') return untilAborted(call);
    return { pid: 1 };
  });
});

afterAll(async () => {
  await close?.();
  await tmp?.cleanup();
});

describe('workspace control socket', () => {
  it('forwards warnings in order, then the answer', async () => {
    const warnings: string[] = [];
    const answer = await callControl<{ big: string }>(socket, { op: 'status' }, { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual(['first', 'second']);
    expect(answer).toEqual({ result: { big: (2n ** 70n).toString() } });
  });

  it('sends a single line to a request without events', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const conn = net.createConnection(socket);
      let t = '';
      conn.setEncoding('utf8');
      conn.on('connect', () => conn.write(`${JSON.stringify({ op: 'status' })}\n`));
      conn.on('data', (d: string) => (t += d));
      conn.on('end', () => resolve(t));
      conn.on('error', reject);
    });
    expect(text.split('\n')).toEqual([JSON.stringify({ ok: true, result: { big: (2n ** 70n).toString() } }), '']);
  });

  it('interrupts a request when the caller aborts, and the caller gets its ABORTED answer', async () => {
    const controller = new AbortController();
    const call = callControl(socket, { op: 'commit' }, { signal: controller.signal });
    while (!seen.has('commit')) await new Promise((r) => setTimeout(r, 5));
    expect(seen.get('commit')!.signal.aborted).toBe(false);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen.get('commit')!.signal.aborted).toBe(true);
  });

  it('aborts a request whose client goes away', async () => {
    seen.delete('commit');
    const conn = net.createConnection(socket);
    conn.on('error', () => {});
    conn.write(`${JSON.stringify({ op: 'commit' })}\n`);
    while (!seen.has('commit')) await new Promise((r) => setTimeout(r, 5));
    const aborted = new Promise<void>((resolve) => seen.get('commit')!.signal.addEventListener('abort', () => resolve(), { once: true }));
    conn.destroy();
    await aborted;
    expect(seen.get('commit')!.signal.aborted).toBe(true);
  });

  it('says the workspace is not mounted when nothing listens', async () => {
    expect(await callControl(path.join(tmp.dir, 'none.sock'), { op: 'ping' })).toBeUndefined();
  });
});
