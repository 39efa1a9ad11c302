import { MirrorstreamError } from '../protocol/errors.js';

/**
 * One encoded video frame as a chunk payload: a 20-byte header, then the codec's bitstream.
 * A producer publishes one chunk per frame and layer, tagged with the same `layer` as the
 * chunk (the gateway's `layers` overflow policy reads the tag, the player reads the header).
 * Every layer of one picture carries the same `frame` number and `timestampUs`: one timeline,
 * whatever layer (or receiver) delivers it. Big-endian:
 *
 * | bytes | field |
 * |---|---|
 * | 0 | format version, 1 |
 * | 1 | flags: bit 0 = key frame (decodable on its own) |
 * | 2 | layer, 0-15 (0 the lowest quality) |
 * | 3 | codec: 1 = VP8, 2 = VP9 |
 * | 4-5, 6-7 | width, height in pixels |
 * | 8-11 | frame number (u32, +1 per picture of the source) |
 * | 12-19 | timestamp in µs on the source's clock (f64) |
 */
export interface VideoFrameChunk {
  key: boolean;
  layer: number;
  codec: VideoCodecName;
  width: number;
  height: number;
  frame: number;
  timestampUs: number;
  data: Uint8Array;
}

export type VideoCodecName = 'vp8' | 'vp9';

const VERSION = 1;
export const VIDEO_FRAME_HEADER_BYTES = 20;
const CODEC_IDS: Record<VideoCodecName, number> = { vp8: 1, vp9: 2 };
const CODECS: Record<number, VideoCodecName> = { 1: 'vp8', 2: 'vp9' };

/** The WebCodecs `codec` string a VideoDecoder is configured with. */
export function webCodecsCodec(codec: VideoCodecName): string {
  return codec === 'vp8' ? 'vp8' : 'vp09.00.10.08';
}

const invalid = (why: string): MirrorstreamError => new MirrorstreamError('MS_VIDEO_FRAME_INVALID', `video frame chunk: ${why}`);

export function encodeVideoFrameChunk(f: VideoFrameChunk): Uint8Array {
  if (!Number.isInteger(f.layer) || f.layer < 0 || f.layer > 15) throw invalid(`layer ${f.layer} is not 0-15`);
  for (const [name, v, max] of [['width', f.width, 0xffff], ['height', f.height, 0xffff], ['frame', f.frame, 0xffffffff]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw invalid(`${name} ${v} is not an integer 0-${max}`);
  }
  if (!Number.isFinite(f.timestampUs) || f.timestampUs < 0) throw invalid(`timestampUs ${f.timestampUs} is not a finite number ≥ 0`);
  const out = new Uint8Array(VIDEO_FRAME_HEADER_BYTES + f.data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, f.key ? 1 : 0);
  view.setUint8(2, f.layer);
  view.setUint8(3, CODEC_IDS[f.codec]);
  view.setUint16(4, f.width);
  view.setUint16(6, f.height);
  view.setUint32(8, f.frame);
  view.setFloat64(12, f.timestampUs);
  out.set(f.data, VIDEO_FRAME_HEADER_BYTES);
  return out;
}

/** The frame in a chunk's payload; MS_VIDEO_FRAME_INVALID when it is not one (the data is a view, not a copy). */
export function decodeVideoFrameChunk(payload: Uint8Array): VideoFrameChunk {
  if (payload.byteLength <= VIDEO_FRAME_HEADER_BYTES) throw invalid(`${payload.byteLength} bytes, fewer than a header and a frame`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (view.getUint8(0) !== VERSION) throw invalid(`format version ${view.getUint8(0)}, this SDK reads ${VERSION}`);
  const flags = view.getUint8(1);
  if ((flags & ~1) !== 0) throw invalid(`unknown flags ${flags}`);
  const layer = view.getUint8(2);
  if (layer > 15) throw invalid(`layer ${layer} is not 0-15`);
  const codec = CODECS[view.getUint8(3)];
  if (!codec) throw invalid(`unknown codec ${view.getUint8(3)}`);
  const width = view.getUint16(4);
  const height = view.getUint16(6);
  if (width === 0 || height === 0) throw invalid(`size ${width}×${height}`);
  const timestampUs = view.getFloat64(12);
  if (!Number.isFinite(timestampUs) || timestampUs < 0) throw invalid(`timestamp ${timestampUs}`);
  return { key: (flags & 1) === 1, layer, codec, width, height, frame: view.getUint32(8), timestampUs, data: payload.subarray(VIDEO_FRAME_HEADER_BYTES) };
}
