import { ProtocolError } from './errors.js';

/**
 * WebTransport streams are byte streams, so each wire frame travels with a 4-byte
 * big-endian length in front. The reader reassembles frames across chunk boundaries
 * and rejects a length above the frame limit before buffering it.
 */
export function lengthPrefixed(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.byteLength);
  new DataView(out.buffer).setUint32(0, frame.byteLength);
  out.set(frame, 4);
  return out;
}

export class FrameReader {
  /** Frames longer than this are refused (the peer may lower or raise it once agreed, e.g. on WELCOME). */
  maxFrameBytes: number;
  #buf = new Uint8Array(0);

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Feed bytes; returns the complete frames, or throws ProtocolError on an oversized length. */
  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.#buf.byteLength + chunk.byteLength);
    joined.set(this.#buf, 0);
    joined.set(chunk, this.#buf.byteLength);
    const frames: Uint8Array[] = [];
    let at = 0;
    while (joined.byteLength - at >= 4) {
      const len = new DataView(joined.buffer, joined.byteOffset + at, 4).getUint32(0);
      if (len > this.maxFrameBytes) throw new ProtocolError('MS_FRAME_TOO_LARGE', `stream frame of ${len} bytes > ${this.maxFrameBytes}`);
      if (joined.byteLength - at - 4 < len) break;
      frames.push(joined.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    this.#buf = joined.slice(at);
    return frames;
  }
}
