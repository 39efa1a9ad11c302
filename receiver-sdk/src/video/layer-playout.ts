import type { VideoFrameChunk } from './frame-chunk.js';

/**
 * The decisions of a layered video player, with no decoder and no clock of its own (the
 * player and the tests give both): which frames go to which layer's decoder, which decoded
 * picture to show at a given wall time, and what the viewer saw.
 *
 * - **Layers are simulcast**: each layer is a whole encoding of the same pictures (same frame
 *   numbers and timestamps). The gateway's `layers` policy sends an endpoint every layer up to
 *   its cap, so the lower layers keep arriving beside the best one: every layer whose chain is
 *   intact is decoded, and the picture comes from the highest one. A capped layer is left
 *   at once (its frames stop: the next lower one is already decoded), and one coming back is
 *   taken from its next key frame.
 * - **A layer's chain**: frames from a key frame on, frame numbers +1 each; a hole (a frame
 *   skipped by the gateway, or lost) breaks it until the next key frame. A layer more than
 *   `maxFramesBehind` behind the newest frame of any layer also counts as broken: the producer
 *   publishes a picture's layers together, so its frames stopped.
 * - **Duplicates** (the next receiver after a switch resends what the previous one delivered
 *   but had not acknowledged) are dropped by frame number.
 * - **Playout**: a picture is shown `playoutDelayMs` after its frame arrived, on the source's
 *   timeline (timestamps), so a pause in delivery shorter than that (a failover) does not show.
 *   When delivery falls behind the timeline (nothing to show for longer than the delay), the
 *   timeline is re-anchored on the next frame: the picture freezes, then plays on, never back.
 */
export interface LayerPlayoutOptions {
  /** How long a frame waits before it is shown (ms): the margin for pauses in delivery; default 250. */
  playoutDelayMs?: number;
  /** A layer this many frames behind the newest is broken (default 1). */
  maxFramesBehind?: number;
}

/** What the player does with an arriving frame. */
export type FrameVerdict =
  /** Decode it on its layer's decoder; `restart` first (a key frame starting a new chain, perhaps a new size). */
  | { decode: true; restart: boolean }
  | { decode: false; reason: 'duplicate' | 'waiting-for-key' | 'stale' };

/** A decoded picture the player holds. */
export interface DecodedPicture {
  layer: number;
  frame: number;
  timestampUs: number;
}

/** What the viewer saw so far. */
export interface PlayoutStats {
  /** Pictures shown (each a new frame number). */
  shown: number;
  /** Frame numbers passed over between two shown pictures (never shown). */
  skipped: number;
  /** Longest wall time between two new pictures (ms), and when it ended. */
  longestFreezeMs: number;
  longestFreezeEndedAt: number | undefined;
  /** A shown picture older than the one before it: never, by design; counted so a page can show it. */
  wentBack: number;
  /** Times the timeline was re-anchored because delivery fell behind it. */
  rebuffers: number;
  /** The layer of the picture shown last, and how often the shown layer changed. */
  layer: number | undefined;
  layerChanges: number;
}

interface Chain {
  /** Last frame number accepted for decoding, or undefined before the first key frame. */
  last: number | undefined;
  intact: boolean;
}

export class LayerPlayout {
  readonly #delayMs: number;
  readonly #maxBehind: number;
  readonly #chains = new Map<number, Chain>();
  /** Decoded pictures per layer, oldest first. */
  readonly #decoded = new Map<number, DecodedPicture[]>();
  #newestFrame = -1;
  /** Wall ms minus timeline ms: a frame with timestamp t is due at t / 1000 + offset. */
  #offsetMs: number | undefined;
  #shown: DecodedPicture | undefined;
  #shownAt: number | undefined;
  readonly #stats: PlayoutStats = { shown: 0, skipped: 0, longestFreezeMs: 0, longestFreezeEndedAt: undefined, wentBack: 0, rebuffers: 0, layer: undefined, layerChanges: 0 };

  constructor(o: LayerPlayoutOptions = {}) {
    this.#delayMs = o.playoutDelayMs ?? 250;
    this.#maxBehind = o.maxFramesBehind ?? 1;
    if (!(this.#delayMs >= 0) || !Number.isInteger(this.#maxBehind) || this.#maxBehind < 0) throw new RangeError('playoutDelayMs must be ≥ 0 and maxFramesBehind an integer ≥ 0');
  }

  /** A frame arrived at wall time `now` (ms): decode it or not. */
  arrive(f: Pick<VideoFrameChunk, 'layer' | 'frame' | 'key' | 'timestampUs'>, now: number): FrameVerdict {
    const chain = this.#chains.get(f.layer) ?? { last: undefined, intact: false };
    this.#chains.set(f.layer, chain);
    if (chain.last !== undefined && f.frame <= chain.last) return { decode: false, reason: 'duplicate' };
    if (this.#shown && f.timestampUs <= this.#shown.timestampUs) {
      chain.last = f.frame;
      chain.intact = false;
      return { decode: false, reason: 'stale' };
    }
    this.#newestFrame = Math.max(this.#newestFrame, f.frame);
    this.#breakLaggards();
    // delivery fell behind the timeline: re-anchor on this frame (a freeze, then on)
    const due = this.#offsetMs === undefined ? undefined : f.timestampUs / 1000 + this.#offsetMs;
    if (this.#offsetMs === undefined || (due !== undefined && due < now - this.#delayMs)) {
      if (this.#offsetMs !== undefined) this.#stats.rebuffers++;
      this.#offsetMs = now - f.timestampUs / 1000 + this.#delayMs;
    }
    if (f.key) {
      chain.last = f.frame;
      chain.intact = true;
      return { decode: true, restart: true };
    }
    const follows = chain.intact && chain.last === f.frame - 1;
    chain.last = f.frame;
    if (!follows) {
      chain.intact = false;
      return { decode: false, reason: 'waiting-for-key' };
    }
    return { decode: true, restart: false };
  }

  /** A layer's decoder gave a picture. */
  decoded(p: DecodedPicture): void {
    const list = this.#decoded.get(p.layer) ?? [];
    this.#decoded.set(p.layer, list);
    list.push(p);
  }

  /** A decoded picture the player had to free before it was shown: never pick it. */
  forget(layer: number, timestampUs: number): void {
    const list = this.#decoded.get(layer);
    const at = list?.findIndex((p) => p.timestampUs === timestampUs) ?? -1;
    if (at >= 0) list?.splice(at, 1);
  }

  /**
   * The picture to show at wall time `now`, if it is a new one; the pictures given up (older
   * than it, on any layer) are returned for the player to free.
   */
  show(now: number): { picture: DecodedPicture | undefined; released: DecodedPicture[] } {
    if (this.#offsetMs === undefined) return { picture: undefined, released: [] };
    const timelineUs = (now - this.#offsetMs) * 1000;
    const after = this.#shown?.timestampUs ?? -Infinity;
    const newestDue = (layer: number): DecodedPicture | undefined => {
      let best: DecodedPicture | undefined;
      for (const p of this.#decoded.get(layer) ?? []) if (p.timestampUs > after && p.timestampUs <= timelineUs) best = p;
      return best;
    };
    const layers = [...this.#decoded.keys()].sort((a, b) => b - a);
    // when: the newest due picture of the highest layer whose chain is intact (a layer that
    // decodes a little behind the others does not make the picture flicker between layers);
    // if it has none, the newest due picture of any layer
    let when: number | undefined;
    const top = layers.find((l) => this.#chains.get(l)?.intact);
    if (top !== undefined) when = newestDue(top)?.timestampUs;
    if (when === undefined) {
      for (const l of layers) when = Math.max(when ?? -Infinity, newestDue(l)?.timestampUs ?? -Infinity);
      if (when === -Infinity) when = undefined;
    }
    // what: that picture from the highest layer that has it (a layer broken since still has its older pictures)
    let pick: DecodedPicture | undefined;
    if (when !== undefined) {
      for (const l of layers) {
        pick = this.#decoded.get(l)?.find((p) => p.timestampUs === when);
        if (pick) break;
      }
    }
    if (!pick) return { picture: undefined, released: [] };
    this.#record(pick, now);
    const released: DecodedPicture[] = [];
    for (const list of this.#decoded.values()) {
      while (list.length > 0 && (list[0]?.timestampUs ?? Infinity) <= pick.timestampUs) released.push(list.shift() as DecodedPicture);
    }
    return { picture: pick, released };
  }

  /** Wall time (ms) at which a frame with this timestamp is due, once the timeline is anchored. */
  dueAt(timestampUs: number): number | undefined {
    return this.#offsetMs === undefined ? undefined : timestampUs / 1000 + this.#offsetMs;
  }

  /** The layers whose chains are intact, highest first. */
  intactLayers(): number[] {
    return [...this.#chains].filter(([, c]) => c.intact).map(([l]) => l).sort((a, b) => b - a);
  }

  stats(): PlayoutStats {
    return { ...this.#stats };
  }

  #record(p: DecodedPicture, now: number): void {
    const s = this.#stats;
    if (this.#shown) {
      if (p.timestampUs < this.#shown.timestampUs) s.wentBack++;
      s.skipped += Math.max(0, p.frame - this.#shown.frame - 1);
      const frozen = now - (this.#shownAt ?? now);
      if (frozen > s.longestFreezeMs) {
        s.longestFreezeMs = frozen;
        s.longestFreezeEndedAt = now;
      }
      if (p.layer !== this.#shown.layer) s.layerChanges++;
    }
    s.shown++;
    s.layer = p.layer;
    this.#shown = p;
    this.#shownAt = now;
  }

  /** Layers whose frames stopped while others go on have a hole: broken until their next key frame. */
  #breakLaggards(): void {
    for (const chain of this.#chains.values()) {
      if (chain.intact && chain.last !== undefined && chain.last < this.#newestFrame - this.#maxBehind) chain.intact = false;
    }
  }
}
