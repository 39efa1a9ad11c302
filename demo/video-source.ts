/**
 * A live video source for the demo: Debian's ffmpeg draws a synthetic moving picture (testsrc2)
 * with a clock, a frame counter and a 12-bit barcode of the frame number along its top edge
 * (a test reads it back from the page's canvas), and encodes it as VP8 in three simulcast
 * layers: 160×90, 320×180 and 640×360, a key frame every 15 frames (0.5 s). Each layer comes
 * out of its own pipe as IVF; a picture's three frames are handed on together, lowest layer
 * first, as video frame chunks (receiver-sdk/src/video/frame-chunk.ts).
 *
 * Why VP8 in IVF: every browser decodes VP8 with WebCodecs, libvpx's realtime mode encodes the
 * three layers on about a third of a core here, and IVF frames need no container parsing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { encodeVideoFrameChunk } from '../receiver-sdk/src/video/frame-chunk.js';

export interface VideoLayerSpec {
  width: number;
  height: number;
  kbps: number;
}

export const VIDEO_LAYERS: readonly VideoLayerSpec[] = [
  { width: 160, height: 90, kbps: 100 },
  { width: 320, height: 180, kbps: 250 },
  { width: 640, height: 360, kbps: 900 },
];
export const VIDEO_FPS = 30;
export const KEY_FRAME_EVERY = 15;
/** Bits of the frame-number barcode, drawn left (bit 0) to right across the top `BARCODE_HEIGHT` rows. */
export const BARCODE_BITS = 12;
export const BARCODE_HEIGHT = 24;

/** One picture: a frame chunk per layer, lowest layer first. */
export type Picture = { layer: number; payload: Uint8Array }[];

export interface VideoSource {
  /** Pictures produced so far. */
  readonly pictures: number;
  close(): Promise<void>;
}

const FONT = ['/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'].find((f) => existsSync(f));

function ffmpegArgs(): string[] {
  const [top] = VIDEO_LAYERS.slice(-1);
  if (!top) throw new Error('no video layers');
  // drawtext escapes: ':' inside an expression needs '\:'
  const text = (expr: string, y: string): string =>
    `drawtext=${FONT ? `fontfile=${FONT}:` : ''}text='${expr}':x=20:y=${y}:fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6`;
  // bit i of the frame number: white or black across the i-th twelfth of the strip
  const bar = `geq=lum='255*mod(floor(N/pow(2\\,floor(X*${BARCODE_BITS}/W)))\\,2)':cb=128:cr=128`;
  const graph = [
    `[0:v]${text('%{localtime\\:%X}', 'h-110')},${text('frame %{frame_num}', 'h-60')}[pic]`,
    `[1:v]format=yuv420p,${bar}[bar]`,
    `[pic][bar]overlay=0:0:shortest=1,split=${VIDEO_LAYERS.length}${VIDEO_LAYERS.map((_, i) => `[s${i}]`).join('')}`,
    ...VIDEO_LAYERS.map((l, i) => `[s${i}]scale=${l.width}:${l.height}[l${i}]`),
  ].join(';');
  const outputs = VIDEO_LAYERS.flatMap((l, i) => [
    '-map', `[l${i}]`,
    '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-threads', '1',
    '-b:v', `${l.kbps}k`, '-maxrate', `${l.kbps}k`, '-bufsize', `${Math.round(l.kbps / 2)}k`,
    '-g', String(KEY_FRAME_EVERY), '-keyint_min', String(KEY_FRAME_EVERY), '-auto-alt-ref', '0', '-lag-in-frames', '0',
    '-f', 'ivf', `pipe:${3 + i}`,
  ]);
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', `testsrc2=size=${top.width}x${top.height}:rate=${VIDEO_FPS}`,
    '-re', '-f', 'lavfi', '-i', `color=c=black:size=${top.width}x${BARCODE_HEIGHT}:rate=${VIDEO_FPS}`,
    '-filter_complex', graph,
    ...outputs,
  ];
}

/** IVF (32-byte file header, then a 12-byte header per frame: size u32le, pts u64le) frame by frame. */
async function* ivfFrames(pipe: Readable): AsyncGenerator<{ width: number; height: number; pts: number; data: Uint8Array }> {
  let buf: Buffer = Buffer.alloc(0);
  let size: { width: number; height: number } | undefined;
  for await (const piece of pipe as AsyncIterable<Buffer>) {
    buf = buf.length === 0 ? piece : Buffer.concat([buf, piece]);
    if (!size) {
      if (buf.length < 32) continue;
      if (buf.toString('latin1', 0, 4) !== 'DKIF') throw new Error('ffmpeg: not an IVF stream');
      size = { width: buf.readUInt16LE(12), height: buf.readUInt16LE(14) };
      buf = buf.subarray(32);
    }
    while (buf.length >= 12) {
      const len = buf.readUInt32LE(0);
      if (buf.length < 12 + len) break;
      yield { ...size, pts: Number(buf.readBigUInt64LE(4)), data: buf.subarray(12, 12 + len) };
      buf = buf.subarray(12 + len);
    }
  }
}

const FFMPEG = process.env.FFMPEG ?? 'ffmpeg';

/**
 * Start the source: `onPicture` gets every picture while it runs, `onFailure` what ffmpeg said
 * if it ends before `close()`. Throws at once when ffmpeg is not installed
 * (apt-get install -y ffmpeg, or set FFMPEG).
 */
export function startVideoSource(onPicture: (picture: Picture, frame: number) => void, onFailure: (message: string) => void = () => undefined): VideoSource {
  if (spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' }).status !== 0) throw new Error(`no ffmpeg at ${FFMPEG}: apt-get install -y ffmpeg, or set FFMPEG`);
  const proc: ChildProcess = spawn(FFMPEG, ffmpegArgs(), { stdio: ['ignore', 'ignore', 'pipe', ...VIDEO_LAYERS.map(() => 'pipe' as const)] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2_000)));
  const startedAtUs = Date.now() * 1000;
  const pending = new Map<number, (Picture[number] | undefined)[]>();
  let pictures = 0;
  let next = 0;
  const flush = (): void => {
    // a picture goes out when every layer has it, in frame order
    for (let parts = pending.get(next); parts && parts.every(Boolean); parts = pending.get(next)) {
      pending.delete(next);
      onPicture(parts as Picture, next);
      pictures++;
      next++;
    }
  };
  let closing = false;
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', (code, signal) => {
      if (!closing) onFailure(`ffmpeg exited (${code ?? signal}): ${stderr.trim()}`);
      resolve();
    }),
  );
  const failed = new Promise<never>((_, reject) => proc.once('error', reject));
  VIDEO_LAYERS.forEach((_, layer) => {
    const pipe = proc.stdio[3 + layer] as Readable;
    void (async () => {
      for await (const f of ivfFrames(pipe)) {
        const payload = encodeVideoFrameChunk({
          // VP8: bit 0 of the first byte is 0 on a key frame
          key: ((f.data[0] ?? 1) & 1) === 0,
          layer,
          codec: 'vp8',
          width: f.width,
          height: f.height,
          frame: f.pts,
          timestampUs: startedAtUs + Math.round((f.pts * 1_000_000) / VIDEO_FPS),
          data: f.data,
        });
        const parts = pending.get(f.pts) ?? VIDEO_LAYERS.map(() => undefined);
        parts[layer] = { layer, payload };
        pending.set(f.pts, parts);
        flush();
      }
    })().catch(() => proc.kill('SIGKILL'));
  });
  void failed.catch(() => undefined);
  return {
    get pictures() {
      return pictures;
    },
    close: async () => {
      closing = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await Promise.race([exited, failed.catch(() => undefined)]);
    },
  };
}
