/**
 * Fixed numbers of the .hxz format (versions 1 and 2). Each is defined in docs/format.md; the section is named beside it.
 */

/** The format version this code writes (section 11). */
export const FORMAT_VERSION = 2;
/** The versions this code reads: 1 (no content digests, no signature slot) and 2. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];

/** Header magic `\x89HXZ\r\n\x1a\n` (section 2). */
export const HEADER_MAGIC = Uint8Array.of(0x89, 0x48, 0x58, 0x5a, 0x0d, 0x0a, 0x1a, 0x0a);
/** The end of every trailer from version 2 on, before its checksum: `HXZT` (section 3). */
export const TRAILER_END_MAGIC = Uint8Array.of(0x48, 0x58, 0x5a, 0x54);
/** Trailer magic `\x89HXZEND\n` (section 3). */
export const TRAILER_MAGIC = Uint8Array.of(0x89, 0x48, 0x58, 0x5a, 0x45, 0x4e, 0x44, 0x0a);

export const HEADER_SIZE = 64;
/** Trailer of version 2 (section 3): the v1 fields, a signature slot, a checksum. */
export const TRAILER_SIZE = 256;
/** Trailer of version 1. */
export const TRAILER_SIZE_V1 = 128;
/** The largest trailer of any readable version: what a reader must fetch to find either. */
export const MAX_TRAILER_SIZE = 256;
/** Bytes at the start of a v2 trailer that its signature covers (section 3.1). */
export const SIGNED_TRAILER_BYTES = 160;
/** Offset of the signer key id in a v2 trailer (section 3). */
export const SIGNER_KEY_ID_OFFSET = 128;
/** Signature algorithms of the trailer's slot (section 3.1): none, Ed25519. */
export const SIG_NONE = 0;
export const SIG_ED25519 = 1;
/** Bytes of a content digest in a v2 file-table entry (section 7.3). */
export const CONTENT_DIGEST_BYTES = 32;

/** Size of the suffix read that opens an archive (section 1): big enough for small archives' whole index. */
export const OPEN_TAIL_BYTES = 64 * 1024;

/** Header/trailer flag bits (sections 2, 3). */
export const FLAG_ENCRYPTED = 1;

/** Frame kinds (section 4). */
export const FRAME_ROOT = 1;
export const FRAME_CHUNK_PAGE = 2;
export const FRAME_FILE_PAGE = 3;
export const FRAME_HEADER_SIZE = 8;

/** Size of one chunk reference (section 7.1) and one chunk-index page entry in the root (section 5). */
export const CHUNK_REF_SIZE = 64;
export const CHUNK_PAGE_ENTRY_SIZE = 56;

/** Chunk reference flag bits (section 7.1). */
export const REF_FLAG_HOLE = 1;

/** Page sizing policy (section 7): aim for about this many pages per table… */
export const TARGET_PAGES_PER_TABLE = 4096;
/** …with chunk-index pages between these bounds (64 KiB to 4 MiB of references)… */
export const MIN_REFS_PER_PAGE = 1024;
export const MAX_REFS_PER_PAGE = 65536;
/** …and file-table pages of at least this many bytes. */
export const MIN_FILE_PAGE_BYTES = 64 * 1024;

/** Largest chunk (plaintext) the format allows: the maximum `max` chunking parameter (section 8). */
export const MAX_CHUNK_BYTES = 1 << 24;

/** Largest hole a single reference may describe (section 6). */
export const MAX_HOLE_BYTES = 2 ** 31;

/** Path limits (section 7.2). */
export const MAX_PATH_BYTES = 4096;
/** Longest symlink target (section 7.2): Linux's PATH_MAX less its terminating NUL. */
export const MAX_SYMLINK_TARGET_BYTES = 4095;

/**
 * Largest decoded frame bodies (section 10, "Limits"). A reader refuses a frame that declares more
 * *before* allocating for it, so a few KB of hostile frame cannot make it allocate a GiB. Chunk-index
 * pages are bounded exactly by the root (count × 64 bytes, at most MAX_REFS_PER_PAGE references).
 */
export const MAX_ROOT_BYTES = 64 * 1024 * 1024;
export const MAX_FILE_PAGE_BYTES = 64 * 1024 * 1024;
/** File-table pages a writer makes grow with the table (section 7) up to this size, then multiply. */
export const MAX_FILE_PAGE_TARGET_BYTES = 16 * 1024 * 1024;

/** Metadata JSON limit (section 5). */
export const MAX_METADATA_BYTES = 1 << 20;

/** Key derivation ids (section 3, 9). */
export const KDF_NONE = 0;
export const KDF_RAW = 1;
export const KDF_SCRYPT = 2;
