/**
 * The whole answer to a content request as one pure function, beside `planRange`: status, every
 * header and what the body is, so routes/files.ts only sends and streams. Table-tested without a
 * server (test/gateway/range.test.ts).
 *
 * - 412 and 416 answer the JSON error body of every other error (docs/gateway.md, "Errors"), with the
 *   validators (and `Content-Range: bytes *\/size` for 416);
 * - 304 carries the validators and Cache-Control but no Content-Type, Content-Length or
 *   Content-Disposition (RFC 9110 §15.4.5: a 304 describes the stored response, it is not one);
 * - HEAD gets exactly GET's status and headers, and no body.
 */
import type { ErrorCode } from '../errors.js';
import { planRange, type ByteRange, type RangeInput, type RangePlan } from './range.js';

export interface ResponseInput extends RangeInput {
  /** Headers of every content answer (Content-Type, Cache-Control, CSP, Content-Disposition…). */
  base: Record<string, string>;
  /** The file's name in error messages (`data/x.csv`, or `disk`). */
  name: string;
}

export type ResponseBody =
  /** No body: 304, HEAD, or an empty file. */
  | { kind: 'none' }
  /** The JSON error body of `code`. */
  | { kind: 'error'; code: ErrorCode; message: string }
  /** The bytes of `ranges`; a multipart layout when there are several. */
  | { kind: 'bytes'; ranges: ByteRange[]; multipart?: RangePlan['multipart'] };

export interface ResponsePlan {
  status: number;
  headers: Record<string, string>;
  body: ResponseBody;
}

/** Headers a 304 must not carry: they describe a body, and a 304 has none. */
const NOT_ON_304 = ['content-type', 'content-length', 'content-disposition'];

/** Plan the answer to a GET or HEAD of a file's content. Same input, same plan. */
export function planResponse(input: ResponseInput): ResponsePlan {
  const plan = planRange(input);
  const date = new Date(input.now).toUTCString();
  if (plan.status === 412) return { status: 412, headers: { ...plan.headers, date }, body: { kind: 'error', code: 'PRECONDITION_FAILED', message: `precondition failed: ${plan.note}` } };
  if (plan.status === 416) {
    return { status: 416, headers: { ...plan.headers, date }, body: { kind: 'error', code: 'OUT_OF_RANGE', message: `range not satisfiable: ${input.name} has ${input.size} bytes` } };
  }
  const headers: Record<string, string> = { ...input.base, ...plan.headers, date };
  if (plan.status === 304) {
    for (const h of NOT_ON_304) delete headers[h];
    return { status: 304, headers, body: { kind: 'none' } };
  }
  if (input.method === 'HEAD' || plan.ranges.length === 0) return { status: plan.status, headers, body: { kind: 'none' } };
  return { status: plan.status, headers, body: { kind: 'bytes', ranges: plan.ranges, multipart: plan.multipart } };
}
