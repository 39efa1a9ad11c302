/**
 * Codec: one DATA frame encoded and decoded, frames/s, for
 * - `protocol`: the wire codec as the gateway and SDK run it (encodeFrame, then decodeFrame
 *   with its byte scan and field checks),
 * - `msgpackr`: msgpackr pack + unpack of the same array, no checks,
 * - `json`: the same array as JSON text with the payload in base64, to bytes and back
 *   (JSON cannot carry binary; this is what a JSON wire format would have to do).
 * Each run times a fixed slice of wall time; the figure is the median over runs.
 */
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, FrameType, type DataFrame } from '../receiver-sdk/src/protocol/index.js';
import { flat, summarize } from './stats.js';

export interface CodecRow {
  payload_bytes: number;
  codec: 'protocol' | 'msgpackr' | 'json';
  frame_bytes: number;
  frames_per_s: number;
  frames_per_s_min: number;
  frames_per_s_max: number;
  ratio_vs_json: number;
  ratio_vs_json_min: number;
  ratio_vs_json_max: number;
}

type Codec = { name: CodecRow['codec']; roundTrip: (f: DataFrame) => number };

const packr = new Packr({ useRecords: false, mapsAsObjects: false });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const asArray = (f: DataFrame): unknown[] => [f.type, f.streamId, f.seq, f.timestamp, f.payload, f.key ?? null, f.layer ?? null];

const codecs: Codec[] = [
  {
    name: 'protocol',
    roundTrip: (f) => {
      const bytes = encodeFrame(f);
      const d = decodeFrame(bytes);
      if (!d.ok) throw d.error;
      return bytes.byteLength;
    },
  },
  {
    name: 'msgpackr',
    roundTrip: (f) => {
      const bytes = packr.pack(asArray(f));
      if (!Array.isArray(packr.unpack(bytes))) throw new Error('msgpackr round trip lost the frame');
      return bytes.byteLength;
    },
  },
  {
    name: 'json',
    roundTrip: (f) => {
      const a = asArray(f);
      a[4] = Buffer.from(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength).toString('base64');
      const bytes = encoder.encode(JSON.stringify(a));
      const back = JSON.parse(decoder.decode(bytes)) as unknown[];
      Buffer.from(String(back[4]), 'base64');
      return bytes.byteLength;
    },
  },
];

function framesPerSecond(codec: Codec, frame: DataFrame, sliceMs: number): { rate: number; bytes: number } {
  let n = 0;
  let bytes = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < sliceMs) {
    for (let i = 0; i < 64; i++) bytes = codec.roundTrip({ ...frame, seq: frame.seq + n++ });
    t = performance.now();
  }
  return { rate: (n * 1000) / (t - t0), bytes };
}

export function codecBench(runs: number, sliceMs: number): CodecRow[] {
  const rows: CodecRow[] = [];
  for (const size of [100, 16 * 1024]) {
    const payload = new Uint8Array(size).map((_, i) => (i * 31) & 255);
    const frame: DataFrame = { type: FrameType.DATA, streamId: 'ticks', seq: 1, timestamp: Date.now(), payload, key: 'ACME', layer: 0 };
    for (const c of codecs) framesPerSecond(c, frame, sliceMs / 2); // warm up the JIT
    const rates = new Map<string, number[]>(codecs.map((c) => [c.name, []]));
    const ratios = new Map<string, number[]>(codecs.map((c) => [c.name, []]));
    const sizes = new Map<string, number>();
    for (let r = 0; r < runs; r++) {
      // one run measures every codec back to back, so a ratio compares like with like
      const round = codecs.map((c) => ({ c, ...framesPerSecond(c, frame, sliceMs) }));
      const json = round.find((x) => x.c.name === 'json')?.rate ?? Number.NaN;
      for (const x of round) {
        rates.get(x.c.name)?.push(x.rate);
        ratios.get(x.c.name)?.push(x.rate / json);
        sizes.set(x.c.name, x.bytes);
      }
    }
    for (const c of codecs) {
      rows.push({
        payload_bytes: size,
        codec: c.name,
        frame_bytes: sizes.get(c.name) ?? 0,
        ...(flat('frames_per_s', summarize(rates.get(c.name) ?? []), 0) as Pick<CodecRow, 'frames_per_s' | 'frames_per_s_min' | 'frames_per_s_max'>),
        ...(flat('ratio_vs_json', summarize(ratios.get(c.name) ?? [])) as Pick<CodecRow, 'ratio_vs_json' | 'ratio_vs_json_min' | 'ratio_vs_json_max'>),
      });
    }
  }
  return rows;
}

if (process.argv[1]?.endsWith('codec.ts')) console.table(codecBench(7, 200));
