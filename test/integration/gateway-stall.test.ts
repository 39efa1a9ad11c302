import { describe, expect, it } from 'vitest';
import type { HedgeEvent, SwitchEvent } from '../../gateway/src/index.js';
import { until, withDeadline } from '../helpers/poll.js';
import { deadAfterMs, sleep, spawnReceiver, startGateway, type ChildReceiver } from '../helpers/webrtc-scenario.js';

/** Block this process (the gateway's event loop) for `ms`, like a long GC pause or a busy handler. */
function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

describe('the gateway stalls, the receivers are fine', () => {
  it('the gateway event loop blocked 5 × 800 ms (longer than the heartbeat detector allows): no switch, nothing lost', async () => {
    const { gateway, server } = await startGateway('node-datachannel', { webtransport: { enabled: true } });
    const rx: ChildReceiver[] = [];
    const switches: SwitchEvent[] = [];
    const hedges: HedgeEvent[] = [];
    gateway.on('switched', (e) => switches.push(e));
    gateway.on('hedged', (e) => hedges.push(e));
    try {
      for (const id of ['a', 'b', 'c']) rx.push(await spawnReceiver(gateway, server.url, id, 'webtransport'));
      await Promise.all(rx.map((r) => r.ready));
      gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c'] });
      await until(() => gateway.getStream('feed').active[0] === 'a', 5_000, 'a active');
      let published = 0;
      // each stall, and the time after it in which a heartbeat verdict on it would come (gateway clock)
      const grace = deadAfterMs(gateway.config) + gateway.config.tickMs;
      const stalls: [number, number][] = [];
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 100; i++) {
          await gateway.publish('feed', new TextEncoder().encode(`tick ${++published}`));
          await sleep(5);
        }
        const from = gateway.clock.now();
        blockEventLoop(800);
        stalls.push([from, gateway.clock.now() + grace]);
      }
      for (let i = 0; i < 100; i++) {
        await gateway.publish('feed', new TextEncoder().encode(`tick ${++published}`));
        await sleep(5);
      }
      const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
      await until(() => union().size >= published, 10_000, 'every chunk delivered', { state: () => `${union().size} of ${published}` });
      const a = rx[0]?.chunks.map((c) => c.seq) ?? [];
      const inStall = (at: number): boolean => stalls.some(([from, to]) => at >= from && at <= to);
      console.log(
        `[gateway stall] 5 × 800 ms blocked: switches ${switches.map((s) => `${s.reason}${s.detail ? `(${s.detail.join(' ')})` : ''}${inStall(s.at) ? ' in a stall window' : ''}`).join(', ')}; ` +
          `hedges ${hedges.filter((h) => h.kind === 'started').length} started (${hedges.filter((h) => h.kind === 'started' && inStall(h.at)).length} in a stall window); a got ${a.length} of ${published}`,
      );
      // what the stalls could cause (a hedge or switch during one, or in the detector's time after
      // it): none; a busy machine may still make a receiver late elsewhere, which is not this test's
      expect(switches.filter((s) => s.reason !== 'initial' && inStall(s.at))).toEqual([]);
      expect(hedges.filter((h) => inStall(h.at))).toEqual([]);
      const all = [...union()].sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: published }, (_, i) => i + 1));
      for (const r of rx) expect(r.chunks.every((c, i) => i === 0 || c.seq > (r.chunks[i - 1]?.seq ?? 0)), `${r.id} strictly increasing`).toBe(true);
      // a, active through every stall, skipped nothing while active (1..n, all of it unless a hiccup elsewhere moved the stream)
      expect(a).toEqual(all.slice(0, a.length));
    } finally {
      for (const r of rx) r.proc.kill('SIGKILL');
      await Promise.all(rx.map((r) => withDeadline(r.exited, 5_000, `${r.id} exit`).catch(() => undefined)));
      await gateway.close();
      await server.close();
    }
  }, 60_000);
});
