import { MirrorstreamError } from '../protocol/errors.js';
import { decodeVideoFrameChunk, webCodecsCodec, type VideoFrameChunk } from './frame-chunk.js';
import { LayerPlayout, type DecodedPicture, type LayerPlayoutOptions, type PlayoutStats } from './layer-playout.js';

/**
 * Plays video frame chunks (frame-chunk.ts) on a canvas with WebCodecs: one VideoDecoder per
 * layer, the picture from the highest intact layer, shown on the source's timeline a playout
 * delay after it arrived (layer-playout.ts has the rules). Feed it every chunk of every receiver
 * of the stream, in each receiver's order: duplicates after a switch are dropped, so the
 * picture goes on across a failover without going back.
 *
 *   const player = new VideoPlayer({ canvas });
 *   for (const rx of receivers) rx.on('chunk', (c) => player.push(c.payload));
 */
export interface VideoPlayerOptions extends LayerPlayoutOptions {
  canvas: HTMLCanvasElement;
  /** Wall clock in ms; default `performance.now`. */
  now?: () => number;
  /** The WebCodecs decoder; default the global `VideoDecoder`. */
  VideoDecoder?: typeof VideoDecoder;
  /** Called once per animation frame; default `requestAnimationFrame`. */
  requestFrame?: (run: () => void) => void;
  /** Called with every picture shown (for a page's own display or measurements). */
  onShow?: (picture: DecodedPicture, stats: PlayoutStats) => void;
}

export interface VideoPlayerStats extends PlayoutStats {
  /** Chunks that were not video frames (MS_VIDEO_FRAME_INVALID), and decoder errors. */
  invalidChunks: number;
  decodeErrors: number;
  /** Frames held back: duplicates, frames of a broken chain until its key frame, frames too late to show. */
  duplicates: number;
  waitingForKey: number;
  stale: number;
  /** Size of each layer's frames, as they last arrived. */
  layerSizes: Record<number, { width: number; height: number }>;
}

/** Decoded pictures a layer may hold before it is shown: past it the oldest are freed (a decoder stalls on frames never closed). */
const MAX_HELD_PER_LAYER = 30;

interface LayerDecoder {
  decoder: VideoDecoder;
  config: string;
  /** Frame number by timestamp, for the pictures it gives back. */
  frames: Map<number, number>;
}

export class VideoPlayer {
  readonly #o: VideoPlayerOptions;
  readonly #playout: LayerPlayout;
  readonly #now: () => number;
  readonly #decoders = new Map<number, LayerDecoder>();
  readonly #held = new Map<number, Map<number, VideoFrame>>();
  readonly #ctx: CanvasRenderingContext2D;
  readonly #counts = { invalidChunks: 0, decodeErrors: 0, duplicates: 0, waitingForKey: 0, stale: 0 };
  readonly #sizes: Record<number, { width: number; height: number }> = {};
  #closed = false;

  constructor(o: VideoPlayerOptions) {
    this.#o = o;
    this.#playout = new LayerPlayout(o);
    this.#now = o.now ?? (() => performance.now());
    const ctx = o.canvas.getContext('2d');
    if (!ctx) throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'VideoPlayer: the canvas has no 2d context');
    this.#ctx = ctx;
    if (!(o.VideoDecoder ?? (globalThis as { VideoDecoder?: unknown }).VideoDecoder)) {
      throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'VideoPlayer: no WebCodecs VideoDecoder in this browser');
    }
    this.#tick();
  }

  /** A chunk's payload from any receiver of the stream. A payload that is not a video frame is counted and ignored. */
  push(payload: Uint8Array): void {
    if (this.#closed) return;
    let f: VideoFrameChunk;
    try {
      f = decodeVideoFrameChunk(payload);
    } catch {
      this.#counts.invalidChunks++;
      return;
    }
    const verdict = this.#playout.arrive(f, this.#now());
    if (!verdict.decode) {
      this.#counts[verdict.reason === 'duplicate' ? 'duplicates' : verdict.reason === 'stale' ? 'stale' : 'waitingForKey']++;
      return;
    }
    this.#sizes[f.layer] = { width: f.width, height: f.height };
    try {
      // a size or codec the decoder refuses throws in configure; a closed or unconfigured decoder throws here
      const d = this.#decoder(f, verdict.restart);
      d.frames.set(f.timestampUs, f.frame);
      d.decoder.decode(new EncodedVideoChunk({ type: f.key ? 'key' : 'delta', timestamp: f.timestampUs, data: f.data }));
    } catch {
      this.#counts.decodeErrors++;
    }
  }

  stats(): VideoPlayerStats {
    return { ...this.#playout.stats(), ...this.#counts, layerSizes: { ...this.#sizes } };
  }

  /** The layers whose chains are intact now, highest first. */
  intactLayers(): number[] {
    return this.#playout.intactLayers();
  }

  close(): void {
    this.#closed = true;
    for (const d of this.#decoders.values()) if (d.decoder.state !== 'closed') d.decoder.close();
    for (const held of this.#held.values()) for (const frame of held.values()) frame.close();
    this.#held.clear();
  }

  /** The layer's decoder, configured for this frame's codec and size when a key frame starts a chain. */
  #decoder(f: VideoFrameChunk, restart: boolean): LayerDecoder {
    const config = `${webCodecsCodec(f.codec)} ${f.width}x${f.height}`;
    let d = this.#decoders.get(f.layer);
    if (!d || d.decoder.state === 'closed') {
      const Decoder = this.#o.VideoDecoder ?? VideoDecoder;
      const layer = f.layer;
      const decoder = new Decoder({
        output: (frame) => this.#output(layer, frame),
        error: () => void this.#counts.decodeErrors++,
      });
      d = { decoder, config: '', frames: new Map() };
      this.#decoders.set(f.layer, d);
    }
    if (restart && d.config !== config) {
      d.decoder.configure({ codec: webCodecsCodec(f.codec), codedWidth: f.width, codedHeight: f.height, optimizeForLatency: true });
      d.config = config;
    }
    return d;
  }

  #output(layer: number, frame: VideoFrame): void {
    const d = this.#decoders.get(layer);
    const number = d?.frames.get(frame.timestamp);
    d?.frames.delete(frame.timestamp);
    if (this.#closed || number === undefined) {
      frame.close();
      return;
    }
    const held = this.#held.get(layer) ?? new Map<number, VideoFrame>();
    this.#held.set(layer, held);
    held.set(frame.timestamp, frame);
    for (const [ts, old] of held) {
      if (held.size <= MAX_HELD_PER_LAYER) break;
      old.close();
      held.delete(ts);
      this.#playout.forget(layer, ts);
    }
    this.#playout.decoded({ layer, frame: number, timestampUs: frame.timestamp });
  }

  #tick(): void {
    if (this.#closed) return;
    const { picture, released } = this.#playout.show(this.#now());
    if (picture) {
      const frame = this.#held.get(picture.layer)?.get(picture.timestampUs);
      if (frame) {
        const canvas = this.#o.canvas;
        // the canvas keeps the largest size seen; a lower layer is scaled up to fill it
        if (frame.displayWidth > canvas.width || frame.displayHeight > canvas.height) {
          canvas.width = Math.max(canvas.width, frame.displayWidth);
          canvas.height = Math.max(canvas.height, frame.displayHeight);
        }
        this.#ctx.drawImage(frame, 0, 0, canvas.width, canvas.height);
      }
      this.#o.onShow?.(picture, this.#playout.stats());
    }
    for (const p of released) {
      const held = this.#held.get(p.layer);
      held?.get(p.timestampUs)?.close();
      held?.delete(p.timestampUs);
    }
    (this.#o.requestFrame ?? ((run: () => void) => requestAnimationFrame(run)))(() => this.#tick());
  }
}
