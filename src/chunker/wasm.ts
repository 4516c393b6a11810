/**
 * The slice of the WebAssembly JavaScript API the chunker uses. Node has all of it; TypeScript's ES
 * libraries do not declare it (only the DOM library does), so it is typed here.
 */
export interface WasmMemory {
  /** A SharedArrayBuffer for shared memories. */
  readonly buffer: ArrayBufferLike;
}

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}

export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
