/**
 * Pre-scan of a frame's msgpack tokens, before msgpackr sees them (see decode.ts).
 */
import { MAX_RESUME_ENTRIES } from './frames.js';

// Pre-scan. msgpackr's Unpackr always honours its own extensions (records redefine fixints
// 0x40-0x7f, bundled strings, structured-clone references, typed arrays, Dates) and
// recurses on nesting, and on trailing bytes it builds a JSON preview of the whole value
// for its error message. Walking the token headers first (no allocation, a dozen tokens
// for DATA, bodies skipped by length) lets only plain msgpack reach it, exactly one value,
// at most two levels deep.

const K_SCALAR = 0;
const K_STR = 1;
export const K_ARRAY = 2;
const K_MAP = 3;
const K_EXT = 4;
const K_RESERVED = 5;

// Second and third results of readToken; module state so the hot path allocates nothing.
/** Kind and count of the token readToken read last (read-only outside this module). */
export let tokKind = K_SCALAR;
export let tokCount = 0;

export const SCAN_MALFORMED = -1;
export const SCAN_INVALID = -2;

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

function u32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/** `n` more bytes from `p`, or -1 if the frame ends first. */
function skip(p: number, n: number, end: number): number {
  return n > end - p ? -1 : p + n;
}

/**
 * Reads the token at `p < end`: sets tokKind (and tokCount for containers) and returns the
 * offset after it, including a string's or binary's body but not a container's elements;
 * -1 if it runs past `end`. Extension and reserved tokens are not measured: they end the scan.
 */
export function readToken(b: Uint8Array, p: number, end: number): number {
  const t = b[p]!;
  if (t < 0x80 || t >= 0xe0) {
    tokKind = K_SCALAR;
    return p + 1;
  }
  if (t < 0x90) {
    tokKind = K_MAP;
    tokCount = t & 0x0f;
    return p + 1;
  }
  if (t < 0xa0) {
    tokKind = K_ARRAY;
    tokCount = t & 0x0f;
    return p + 1;
  }
  if (t < 0xc0) {
    tokKind = K_STR;
    return skip(p + 1, t & 0x1f, end);
  }
  tokKind = K_SCALAR;
  switch (t) {
    case 0xc0: // nil
    case 0xc2: // false
    case 0xc3: // true
      return p + 1;
    case 0xcc: // uint 8
    case 0xd0: // int 8
      return skip(p, 2, end);
    case 0xcd:
    case 0xd1:
      return skip(p, 3, end);
    case 0xca: // float 32
    case 0xce:
    case 0xd2:
      return skip(p, 5, end);
    case 0xcb: // float 64
    case 0xcf:
    case 0xd3:
      return skip(p, 9, end);
    case 0xc4: // bin 8
      return p + 2 > end ? -1 : skip(p + 2, b[p + 1]!, end);
    case 0xc5:
      return p + 3 > end ? -1 : skip(p + 3, u16(b, p + 1), end);
    case 0xc6:
      return p + 5 > end ? -1 : skip(p + 5, u32(b, p + 1), end);
    case 0xd9: // str 8
      tokKind = K_STR;
      return p + 2 > end ? -1 : skip(p + 2, b[p + 1]!, end);
    case 0xda:
      tokKind = K_STR;
      return p + 3 > end ? -1 : skip(p + 3, u16(b, p + 1), end);
    case 0xdb:
      tokKind = K_STR;
      return p + 5 > end ? -1 : skip(p + 5, u32(b, p + 1), end);
    case 0xdc: // array 16
    case 0xde: // map 16
      if (p + 3 > end) return -1;
      tokKind = t === 0xdc ? K_ARRAY : K_MAP;
      tokCount = u16(b, p + 1);
      return p + 3;
    case 0xdd: // array 32
    case 0xdf: // map 32
      if (p + 5 > end) return -1;
      tokKind = t === 0xdd ? K_ARRAY : K_MAP;
      tokCount = u32(b, p + 1);
      return p + 5;
    case 0xc1: // never used
      tokKind = K_RESERVED;
      return p + 1;
    default: // 0xc7-0xc9, 0xd4-0xd8: ext
      tokKind = K_EXT;
      return p + 1;
  }
}

export const TYPE_NOT_UINT = -1;
export const TYPE_TOO_BIG = -2;

/** The frame type from its encoding: any unsigned integer form; other integers are unknown types. */
export function peekType(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return TYPE_NOT_UINT;
  const t = b[p]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return TYPE_TOO_BIG; // negative fixint
  switch (t) {
    case 0xcc:
      return p + 2 > end ? TYPE_NOT_UINT : b[p + 1]!;
    case 0xcd:
      return p + 3 > end ? TYPE_NOT_UINT : u16(b, p + 1);
    case 0xce:
      return p + 5 > end ? TYPE_NOT_UINT : u32(b, p + 1);
    case 0xcf:
      if (p + 9 > end) return TYPE_NOT_UINT;
      return u32(b, p + 1) === 0 ? u32(b, p + 5) : TYPE_TOO_BIG;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return skip(p, t === 0xd0 ? 2 : t === 0xd1 ? 3 : t === 0xd2 ? 5 : 9, end) < 0 ? TYPE_NOT_UINT : TYPE_TOO_BIG;
    default:
      return TYPE_NOT_UINT;
  }
}

/**
 * Walks `count` elements from `p`: returns the offset after them, SCAN_MALFORMED, or
 * SCAN_INVALID. An element may be a container of scalars (HELLO's resume map); a map's keys
 * must be strings. Nested containers are capped at MAX_RESUME_ENTRIES so a small frame
 * cannot make the decoder build a huge map before the field check rejects it.
 */
export function scanElements(b: Uint8Array, p: number, end: number, count: number): number {
  for (let i = 0; i < count; i++) {
    if (p >= end) return SCAN_MALFORMED;
    p = readToken(b, p, end);
    if (p < 0) return SCAN_MALFORMED;
    const kind = tokKind;
    if (kind === K_SCALAR || kind === K_STR) continue;
    if (kind === K_RESERVED) return SCAN_MALFORMED;
    if (kind === K_EXT || tokCount > MAX_RESUME_ENTRIES) return SCAN_INVALID;
    const isMap = kind === K_MAP;
    const items = isMap ? tokCount * 2 : tokCount;
    for (let j = 0; j < items; j++) {
      if (p >= end) return SCAN_MALFORMED;
      p = readToken(b, p, end);
      if (p < 0 || tokKind === K_RESERVED) return SCAN_MALFORMED;
      if (tokKind === K_STR) continue;
      if (tokKind !== K_SCALAR || (isMap && (j & 1) === 0)) return SCAN_INVALID;
    }
  }
  return p;
}
