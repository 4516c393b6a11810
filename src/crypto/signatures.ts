/**
 * Signed archives: Ed25519 over the trailer (docs/format.md, section 3.1). Pure functions of bytes and
 * keys — signing a trailer, checking one against a set of trusted keys, and the typed refusal when a
 * reader requires a trusted signature. Key files live in ./signing-keys.ts.
 *
 * What a signature proves: the trailer's first 160 bytes hold the root hash, which commits to every
 * index structure and chunk id and to the UUID and root hash of every base, so a valid signature by a
 * trusted key vouches for the whole content. Readers that enforce trust also require each base of the
 * chain to carry a trusted signature of its own (src/reader/bases.ts): every archive whose bytes are
 * served was published by a trusted signer, not merely referenced by one.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { HexzError, type ErrorCode, type ErrorContext } from '../errors.js';
import { bytesEqual, toHex } from '../format/bytes.js';
import { SIG_ED25519, SIG_NONE, SIGNED_TRAILER_BYTES, SIGNER_KEY_ID_OFFSET } from '../format/constants.js';
import { encodeTrailer, signedTrailerBytes, type Trailer } from '../format/header.js';
import { hash } from '../hash.js';

/** The domain-separation prefix of the signed message (section 3.1): 26 bytes, NUL included. */
export const SIGNATURE_CONTEXT = Buffer.from('hexz/v2/trailer-signature\0', 'latin1');
/** Size of a raw Ed25519 public key (RFC 8032). */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Size of an Ed25519 signature (RFC 8032). */
export const ED25519_SIGNATURE_BYTES = 64;

/** The codes of a refusal for a signature (see `refusalOf`): every front end counts and maps these alike. */
export const SIGNATURE_REFUSALS = ['UNSIGNED', 'UNTRUSTED_SIGNER', 'BAD_SIGNATURE'] as const satisfies readonly ErrorCode[];
export type SignatureRefusal = (typeof SIGNATURE_REFUSALS)[number];

/** A key to sign with: the private key and what identifies it. */
export interface SigningKey {
  privateKey: KeyObject;
  /** Raw 32-byte public key. */
  publicKey: Uint8Array;
  /** `H(publicKey)`: what the trailer records. */
  keyId: Uint8Array;
}

/** A public key a reader trusts, and where it was found (for messages). */
export interface TrustedKey {
  publicKey: Uint8Array;
  keyId: Uint8Array;
  /** The comment of its `.pub` line (who it is), possibly empty. */
  comment: string;
  /** `FILE:LINE` it came from. */
  source: string;
  keyObject: KeyObject;
}

/** The key id of a raw Ed25519 public key: its BLAKE3 hash. */
export function keyIdOf(publicKey: Uint8Array): Uint8Array {
  return hash(publicKey);
}

/** A node:crypto key object of a raw 32-byte Ed25519 public key. */
export function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
    throw new HexzError('INVALID_ARGUMENT', `an Ed25519 public key has ${ED25519_PUBLIC_KEY_BYTES} bytes, got ${raw.byteLength}`);
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** The raw 32 bytes of an Ed25519 key object's public half. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  return Uint8Array.from(Buffer.from(String(jwk.x), 'base64url'));
}

/** A signing key from an Ed25519 private key object. */
export function signingKeyOf(privateKey: KeyObject): SigningKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new HexzError('INVALID_ARGUMENT', `a signing key must be an Ed25519 private key, not ${privateKey.asymmetricKeyType ?? privateKey.type}`);
  }
  const publicKey = rawPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** The public keys a reader accepts signatures from, by key id. */
export class TrustedKeys {
  private readonly byId = new Map<string, TrustedKey>();

  /** `sources`: the files or directories the keys were read from (for messages). */
  constructor(
    keys: Iterable<TrustedKey>,
    readonly sources: readonly string[] = [],
  ) {
    for (const k of keys) if (!this.byId.has(toHex(k.keyId))) this.byId.set(toHex(k.keyId), k);
  }

  get size(): number {
    return this.byId.size;
  }

  /** The trusted key with this id, or undefined. */
  get(keyId: Uint8Array): TrustedKey | undefined {
    return this.byId.get(toHex(keyId));
  }

  [Symbol.iterator](): Iterator<TrustedKey> {
    return this.byId.values();
  }
}

/** The message an Ed25519 signature of a trailer covers: the context ‖ trailer bytes [0, 160). */
export function signatureMessage(trailerBytes: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE_CONTEXT, signedTrailerBytes(trailerBytes)]);
}

/**
 * Encode `t` as a version 2 trailer signed by `key`. The algorithm byte and key id are part of what
 * is signed, so the trailer is encoded once with them and an empty signature, signed, and encoded
 * again with the signature (which lies outside the signed bytes).
 */
export function encodeSignedTrailer(t: Trailer, key: SigningKey): Uint8Array {
  if (t.version < 2) {
    throw new HexzError('UNSUPPORTED_VERSION', `a format version ${t.version} trailer has no signature slot`, { actual: String(t.version), remedy: 'repack' });
  }
  const slot = { algorithm: SIG_ED25519, keyId: key.keyId, signature: new Uint8Array(ED25519_SIGNATURE_BYTES) } as const;
  const unsigned = encodeTrailer({ ...t, signature: slot });
  const signature = Uint8Array.from(sign(null, signatureMessage(unsigned), key.privateKey));
  return encodeTrailer({ ...t, signature: { ...slot, signature } });
}

/**
 * What a trailer's signature slot says, checked against trusted keys:
 * - `unsigned`: no signature (algorithm 0, or a version 1 archive, which has no slot);
 * - `unchecked`: signed, but no trusted keys were given, so nothing could be verified;
 * - `untrusted`: signed by a key that is not among the trusted ones;
 * - `bad`: signed by a trusted key, but the signature does not verify (the signed bytes changed);
 * - `trusted`: a valid signature by a trusted key.
 */
export type SignatureState = 'unsigned' | 'unchecked' | 'untrusted' | 'bad' | 'trusted';

export interface SignatureCheck {
  state: SignatureState;
  /** Format version of the archive (version 1 cannot be signed). */
  formatVersion: number;
  /** Signer key id in hex, when signed. */
  keyId?: string;
  /** The trusted key's comment, when the signer is trusted (`trusted` or `bad`). */
  signer?: string;
}

/**
 * Check the signature of an encoded trailer (`trailerBytes`, which `trailer` was decoded from)
 * against `trusted`. Pure: no I/O.
 */
export function checkSignature(trailerBytes: Uint8Array, trailer: Trailer, trusted?: TrustedKeys): SignatureCheck {
  const formatVersion = trailer.version;
  const slot = trailer.signature;
  if (!slot || slot.algorithm === SIG_NONE) return { state: 'unsigned', formatVersion };
  const keyId = toHex(slot.keyId);
  if (!trusted) return { state: 'unchecked', formatVersion, keyId };
  const key = trusted.get(slot.keyId);
  if (!key) return { state: 'untrusted', formatVersion, keyId };
  // The decoded slot must be the one in the bytes (callers pass the bytes it was decoded from).
  const inBytes = trailerBytes.subarray(SIGNER_KEY_ID_OFFSET, SIGNED_TRAILER_BYTES);
  const ok = bytesEqual(inBytes, slot.keyId) && verify(null, signatureMessage(trailerBytes), key.keyObject, slot.signature);
  return { state: ok ? 'trusted' : 'bad', formatVersion, keyId, signer: key.comment };
}

/** Which archive of a chain a check is about, for messages and error context. */
export interface ChainPosition {
  /** The archive being opened (the delta, or the archive itself). */
  archive: string;
  /** Where this member was read from (the archive itself, or a base's location). */
  url: string;
  /** Set for a base: its UUID. */
  base?: string;
  /** Owner slot of a base (1-based). */
  slot?: number;
}

function whoOf(p: ChainPosition): string {
  return p.base === undefined ? p.url : `base ${p.base} of ${p.archive} (at ${p.url})`;
}

/**
 * The refusal for a check that a reader requiring trusted signatures must not accept, or undefined
 * when it is `trusted`. `UNSIGNED`, `UNTRUSTED_SIGNER` and `BAD_SIGNATURE` (exit 27, HTTP 403, EACCES)
 * name the archive of the chain at fault.
 */
export function refusalOf(check: SignatureCheck, where: ChainPosition): HexzError | undefined {
  const ctx: ErrorContext = { archive: where.archive, url: where.url, ...(where.base ? { base: where.base, slot: where.slot } : {}) };
  const who = whoOf(where);
  switch (check.state) {
    case 'trusted':
      return undefined;
    case 'unsigned':
      return check.formatVersion < 2
        ? new HexzError('UNSIGNED', `${who} is a format version ${check.formatVersion} archive, which cannot carry a signature; a trusted signature is required`, { ...ctx, remedy: 'repack' })
        : new HexzError('UNSIGNED', `${who} is not signed; a signature by a trusted key is required`, { ...ctx, remedy: 'sign' });
    case 'unchecked':
    case 'untrusted':
      return new HexzError('UNTRUSTED_SIGNER', `${who} is signed by key ${check.keyId}, which is not a trusted key`, { ...ctx, keyId: check.keyId, remedy: 'trust-signer' });
    case 'bad':
      return new HexzError('BAD_SIGNATURE', `${who}: its signature by trusted key ${check.keyId}${check.signer ? ` (${check.signer})` : ''} does not verify: the archive was altered after it was signed`, { ...ctx, keyId: check.keyId });
  }
}

/** Throw the refusal of `check` (see `refusalOf`) unless it is trusted. */
export function requireTrusted(check: SignatureCheck, where: ChainPosition): void {
  const refusal = refusalOf(check, where);
  if (refusal) throw refusal;
}
