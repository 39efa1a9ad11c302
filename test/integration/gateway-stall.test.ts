import { describe, expect, it } from 'vitest';
import type { HedgeEvent, SwitchEvent } from '../../gateway/src/index.js';
import { sleep, spawnReceiver, startGateway, waitFor, withDeadline, type ChildReceiver } from '../helpers/webrtc-scenario.js';

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
      await waitFor(() => gateway.getStream('feed').active[0] === 'a', 5_000, 'a active');
      let published = 0;
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 100; i++) {
          await gateway.publish('feed', new TextEncoder().encode(`tick ${++published}`));
          await sleep(5);
        }
        blockEventLoop(800);
      }
      for (let i = 0; i < 100; i++) {
        await gateway.publish('feed', new TextEncoder().encode(`tick ${++published}`));
        await sleep(5);
      }
      const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
      await waitFor(() => union().size >= published, 10_000, 'every chunk delivered');
      const a = rx[0]?.chunks.map((c) => c.seq) ?? [];
      console.log(`[gateway stall] 5 × 800 ms blocked: switches ${switches.map((s) => `${s.reason}${s.detail ? `(${s.detail.join(" ")})` : ""}`).join(', ')}; hedges ${hedges.filter((h) => h.kind === 'started').length} started; a got ${a.length} of ${published}`);
      expect(switches.map((s) => s.reason)).toEqual(['initial']);
      expect(gateway.getStream('feed').active).toEqual(['a']);
      expect(a).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    } finally {
      for (const r of rx) r.proc.kill('SIGKILL');
      await Promise.all(rx.map((r) => withDeadline(r.exited, 5_000, `${r.id} exit`).catch(() => undefined)));
      await gateway.close();
      await server.close();
    }
  }, 60_000);
});
