import { describe, expect, it } from 'vitest';
import { LayerPlayout, type DecodedPicture } from '../../receiver-sdk/src/video/layer-playout.js';

/**
 * The layered player's decisions on a manual clock: frames of three simulcast layers arrive
 * (a key frame every 15), a decoder that answers at once, a display that asks every 16 ms.
 */
const FRAME_MS = 1000 / 30;
const KEY_EVERY = 15;

interface Rig {
  playout: LayerPlayout;
  shown: DecodedPicture[];
  /** Wall ms a new picture was shown, per shown picture. */
  shownAt: number[];
  /** Deliver frame `n` of `layers` at wall time `at`, then run the display up to it. */
  deliver(n: number, layers: number[], at: number): void;
  /** Run the display (every 16 ms) up to wall time `until`. */
  runUntil(until: number): void;
}

function rig(delayMs = 250): Rig {
  const playout = new LayerPlayout({ playoutDelayMs: delayMs });
  const shown: DecodedPicture[] = [];
  const shownAt: number[] = [];
  let displayAt = 0;
  const runUntil = (until: number): void => {
    for (; displayAt <= until; displayAt += 16) {
      const { picture } = playout.show(displayAt);
      if (picture) {
        shown.push(picture);
        shownAt.push(displayAt);
      }
    }
  };
  const deliver = (n: number, layers: number[], at: number): void => {
    runUntil(at);
    for (const layer of layers) {
      const f = { layer, frame: n, key: n % KEY_EVERY === 0, timestampUs: Math.round(n * FRAME_MS * 1000) };
      const verdict = playout.arrive(f, at);
      if (verdict.decode) playout.decoded({ layer, frame: n, timestampUs: f.timestampUs });
    }
  };
  return { playout, shown, shownAt, deliver, runUntil };
}

const ALL = [0, 1, 2];

describe('LayerPlayout', () => {
  it('shows the highest layer, every picture in order, a playout delay after it arrived', () => {
    const r = rig(250);
    for (let n = 0; n < 90; n++) r.deliver(n, ALL, n * FRAME_MS + 5);
    r.runUntil(90 * FRAME_MS + 300);
    expect(r.shown.map((p) => p.frame)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    expect(new Set(r.shown.map((p) => p.layer))).toEqual(new Set([2]));
    // frame 0 arrived at 5 ms: shown at the first display tick from 255 ms on
    expect(r.shownAt[0]).toBe(256);
    const s = r.playout.stats();
    expect(s).toMatchObject({ shown: 90, skipped: 0, wentBack: 0, rebuffers: 0, layer: 2, layerChanges: 0 });
    expect(s.longestFreezeMs).toBeLessThanOrEqual(48); // one frame, rounded to the 16 ms display
  });

  it('duplicates from the next receiver after a switch are dropped: the picture never goes back', () => {
    const r = rig(250);
    for (let n = 0; n < 40; n++) r.deliver(n, ALL, n * FRAME_MS);
    // the next receiver starts at the ack frontier (frame 35): 35..39 again, then on
    for (let n = 35; n < 80; n++) r.deliver(n, ALL, 40 * FRAME_MS + 60 + (n - 35) * 2);
    r.runUntil(80 * FRAME_MS + 400);
    const frames = r.shown.map((p) => p.frame);
    expect(frames.every((f, i) => i === 0 || f > (frames[i - 1] ?? -1))).toBe(true);
    expect(frames.at(-1)).toBe(79);
    expect(r.playout.stats().wentBack).toBe(0);
  });

  it('a pause in delivery shorter than the playout delay (a failover) does not freeze the picture', () => {
    const r = rig(250);
    for (let n = 0; n < 30; n++) r.deliver(n, ALL, n * FRAME_MS);
    // 150 ms of nothing, then the frames that were due meanwhile in a burst, then on time again
    const resumeAt = 30 * FRAME_MS + 150;
    for (let n = 30; n < 36; n++) r.deliver(n, ALL, resumeAt + (n - 30));
    for (let n = 36; n < 90; n++) r.deliver(n, ALL, n * FRAME_MS);
    r.runUntil(90 * FRAME_MS + 300);
    const s = r.playout.stats();
    expect(s).toMatchObject({ shown: 90, skipped: 0, rebuffers: 0, wentBack: 0 });
    expect(s.longestFreezeMs).toBeLessThanOrEqual(48);
  });

  it('a pause longer than the delay freezes the picture for the difference, re-anchors, and plays on without going back', () => {
    const r = rig(250);
    for (let n = 0; n < 30; n++) r.deliver(n, ALL, n * FRAME_MS);
    // 600 ms of nothing: frames 30..47 come late
    const resumeAt = 30 * FRAME_MS + 600;
    for (let n = 30; n < 90; n++) r.deliver(n, ALL, resumeAt + (n - 30) * FRAME_MS);
    r.runUntil(resumeAt + 60 * FRAME_MS + 300);
    const s = r.playout.stats();
    expect(s.rebuffers).toBe(1);
    expect(s.wentBack).toBe(0);
    expect(s.skipped).toBe(0);
    // the last picture before the pause was shown at about 29 frames + 250 ms; the next 600 ms
    // later, plus the delay again after re-anchoring
    expect(s.longestFreezeMs).toBeGreaterThan(600);
    expect(s.longestFreezeMs).toBeLessThan(600 + 250 + 50);
  });

  it('a capped top layer is left at once for the next one, without a freeze, and taken back at its next key frame', () => {
    const r = rig(250);
    for (let n = 0; n < 40; n++) r.deliver(n, ALL, n * FRAME_MS);
    // the gateway caps the endpoint at layer 1 from frame 40 (layer 2's frames are skipped) ...
    for (let n = 40; n < 70; n++) r.deliver(n, [0, 1], n * FRAME_MS);
    // ... and lets it climb back from frame 70 (not a key frame: 75 is)
    for (let n = 70; n < 120; n++) r.deliver(n, ALL, n * FRAME_MS);
    r.runUntil(120 * FRAME_MS + 300);
    const layerOf = new Map(r.shown.map((p) => [p.frame, p.layer]));
    expect(layerOf.get(39)).toBe(2);
    expect(layerOf.get(41)).toBe(1);
    expect(layerOf.get(74)).toBe(1);
    expect(layerOf.get(75)).toBe(2);
    const s = r.playout.stats();
    expect(s).toMatchObject({ shown: 120, skipped: 0, wentBack: 0, layerChanges: 2, layer: 2 });
    expect(s.longestFreezeMs).toBeLessThanOrEqual(48);
  });

  it('a hole in a layer (a lost frame) breaks its chain until the next key frame; the lower layer fills in', () => {
    const r = rig(250);
    for (let n = 0; n < 20; n++) r.deliver(n, ALL, n * FRAME_MS);
    r.deliver(20, [0, 1], 20 * FRAME_MS); // layer 2's frame 20 is lost
    for (let n = 21; n < 45; n++) r.deliver(n, ALL, n * FRAME_MS);
    r.runUntil(45 * FRAME_MS + 300);
    const layerOf = new Map(r.shown.map((p) => [p.frame, p.layer]));
    expect([19, 20, 29, 30].map((f) => layerOf.get(f))).toEqual([2, 1, 1, 2]);
    expect(r.playout.intactLayers()).toEqual([2, 1, 0]);
  });

  it('a picture the player had to free before it was due is never shown; the one after it is', () => {
    const playout = new LayerPlayout({ playoutDelayMs: 100 });
    for (const frame of [0, 1, 2]) {
      const f = { layer: 0, frame, key: frame === 0, timestampUs: Math.round(frame * FRAME_MS * 1000) };
      expect(playout.arrive(f, frame * FRAME_MS).decode).toBe(true);
      playout.decoded({ layer: 0, frame, timestampUs: f.timestampUs });
    }
    playout.forget(0, Math.round(1 * FRAME_MS * 1000));
    const shown = [101, 101 + FRAME_MS, 101 + 2 * FRAME_MS].map((at) => playout.show(at).picture?.frame);
    expect(shown).toEqual([0, undefined, 2]);
  });

  it('checks its options', () => {
    expect(() => new LayerPlayout({ playoutDelayMs: -1 })).toThrow(RangeError);
    expect(() => new LayerPlayout({ maxFramesBehind: 0.5 })).toThrow(RangeError);
  });
});
