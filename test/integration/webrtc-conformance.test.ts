import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointHealthEvent, Gateway, GatewayConfigInput, RunningServer } from '../../gateway/src/index.js';
import { Receiver, type Chunk, type Gap } from '../../receiver-sdk/src/node.js';
import { until } from '../helpers/poll.js';
import { seededBackoff } from '../helpers/random.js';
import { startGateway, type Engine } from '../helpers/webrtc-scenario.js';

/** The same suite for both gateway engines, over real loopback sockets, receivers in-process. */
describe.each<Engine>(['node-datachannel', 'werift'])('WebRTC engine conformance (%s)', (engine) => {
  let gateway: Gateway;
  let server: RunningServer;
  const receivers: Receiver[] = [];

  afterEach(async () => {
    for (const r of receivers.splice(0)) r.close();
    await gateway?.close();
    await server?.close();
  });

  async function setup(config: GatewayConfigInput = {}): Promise<void> {
    ({ gateway, server } = await startGateway(engine, config));
  }

  async function receiver(id: string): Promise<{ rx: Receiver; chunks: Chunk[]; gaps: Gap[] }> {
    const { token } = await gateway.issueToken(id);
    const rx = new Receiver({ gatewayUrl: server.url, endpointId: id, token, rtcConfig: { bindAddress: '127.0.0.1' }, reconnect: seededBackoff(receivers.length + 1) });
    const chunks: Chunk[] = [];
    const gaps: Gap[] = [];
    rx.on('chunk', (c) => chunks.push(c));
    rx.on('gap', (g) => gaps.push(g));
    receivers.push(rx);
    await rx.connect();
    return { rx, chunks, gaps };
  }

  const seqs = (chunks: Chunk[]): number[] => chunks.map((c) => c.seq);
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

  it('mirror mode: 3 receivers each get 1..N in order', async () => {
    await setup();
    const rs = [await receiver('m1'), await receiver('m2'), await receiver('m3')];
    gateway.createStream({ stream_id: 'mirror', mode: 'mirror', endpoint_list: ['m1', 'm2', 'm3'] });
    await until(() => gateway.getStream('mirror').active.length === 3, 5_000, 'all active');
    for (let i = 1; i <= 3_000; i++) await gateway.publish('mirror', `m${i}`);
    await until(() => rs.every((r) => r.chunks.length >= 3_000), 20_000, 'mirror delivery');
    for (const r of rs) expect(seqs(r.chunks)).toEqual(range(3_000));
  }, 40_000);

  it('16 KiB chunks under backpressure arrive complete and in order', async () => {
    await setup();
    const r = await receiver('big');
    gateway.createStream({ stream_id: 'big', endpoint_list: ['big'] });
    await until(() => gateway.getStream('big').active.length === 1, 5_000, 'active');
    const payload = new Uint8Array(16 * 1024);
    for (let i = 1; i <= 600; i++) {
      payload[0] = i & 255;
      await gateway.publish('big', payload.slice());
    }
    await until(() => r.chunks.length >= 600, 30_000, '600 x 16 KiB');
    expect(seqs(r.chunks)).toEqual(range(600));
    expect(r.chunks.every((c) => c.payload.byteLength === 16 * 1024 && c.payload[0] === (c.seq & 255))).toBe(true);
    await until(() => gateway.getStream('big').endpoint_list[0]?.last_acked_seq === 600, 5_000, 'acks');
  }, 40_000);

  it('an unreliable stream is carried on the unordered channel and delivered in seq order', async () => {
    await setup();
    const r = await receiver('lossy');
    gateway.createStream({ stream_id: 'video', endpoint_list: ['lossy'], reliability: 'unreliable' });
    await until(() => gateway.getStream('video').active.length === 1, 5_000, 'active');
    for (let i = 1; i <= 500; i++) await gateway.publish('video', `f${i}`);
    // nothing is retransmitted: a lost chunk shows as a gap once a later one arrives, so chunks
    // go on until one past 500 did; then every seq up to 500 is delivered or reported lost, once
    let n = 500;
    await until(async () => {
      if ((r.chunks.at(-1)?.seq ?? 0) > 500) return true;
      await gateway.publish('video', `f${++n}`);
      return false;
    }, 10_000, 'a chunk past 500 delivered', { state: () => ({ last: r.chunks.at(-1)?.seq, published: n }) });
    const delivered = seqs(r.chunks).filter((seq) => seq <= 500);
    const lost = r.gaps.flatMap((g) => range(g.to - g.from + 1).map((i) => g.from - 1 + i)).filter((seq) => seq <= 500);
    console.log(`[${engine} unreliable] ${delivered.length} of 500 delivered, ${lost.length} reported lost (${r.gaps.map((g) => g.reason).join(', ') || 'no gap'})`);
    expect(delivered.every((v, i) => i === 0 || v > (delivered[i - 1] ?? 0))).toBe(true);
    expect([...delivered, ...lost].sort((x, y) => x - y)).toEqual(range(500));
    expect(r.gaps.every((g) => g.reason === 'unreliable-loss')).toBe(true);
    expect(gateway.getStream('video').reliability).toBe('unreliable');
  }, 20_000);

  it('reports transport telemetry with its source', async () => {
    await setup();
    await receiver('stats');
    gateway.createStream({ stream_id: 'st', endpoint_list: ['stats'] });
    for (let i = 1; i <= 200; i++) await gateway.publish('st', new Uint8Array(1024));
    // the engine's stats are polled: until they show the 200 KiB and an RTT
    await until(() => (gateway.endpointHealth('stats').transport?.bytesSent ?? 0) > 200 * 1024 && gateway.endpointHealth('stats').transport?.rttMs !== undefined, 5_000, 'transport telemetry', {
      state: () => gateway.endpointHealth('stats').transport,
    });
    const t = gateway.endpointHealth('stats').transport;
    console.log(`[${engine} telemetry] ${JSON.stringify(t)}`);
    expect(t?.kind).toBe('webrtc');
    // a loopback RTT in ms: at most what the gateway calls a healthy path (a unit slip to µs fails)
    expect(t?.rttMs?.value).toBeGreaterThanOrEqual(0);
    expect(t?.rttMs?.value).toBeLessThan(gateway.config.health.maxRttMs);
    if (engine === 'werift') expect(t?.extra?.sctpSrttMs).toEqual(t?.rttMs);
    expect(t?.rttMs?.source).toMatch(engine === 'werift' ? /^werift\./ : /^node-datachannel\./);
    expect(t?.bytesSent).toBeGreaterThan(200 * 1024);
    if (engine === 'werift') {
      expect(Object.keys(t?.extra ?? {})).toEqual(expect.arrayContaining(['sctpRtoMs', 'sctpCwndBytes', 'sctpFlightSizeBytes', 'sctpRetransmits']));
    }
    expect(gateway.endpointHealth('stats').rtt_ms?.source).toBe('gateway.heartbeat');
  }, 20_000);

  it('a session ended by the gateway side is re-established by the SDK, which resumes without loss', async () => {
    await setup();
    const r = await receiver('re');
    gateway.createStream({ stream_id: 'resume', endpoint_list: ['re'] });
    for (let i = 1; i <= 1_000; i++) {
      await gateway.publish('resume', `r${i}`);
      if (i === 400) {
        // cut the peer connection under the receiver, as a network drop would
        const sessionBefore = r.rx.sessionId;
        await fetch(`${server.url}/v1/endpoints/re/webrtc/${sessionBefore}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${(await gateway.issueToken('re')).token}` },
        });
      }
      if (i % 50 === 0) await new Promise((res) => setTimeout(res, 5));
    }
    await until(() => (r.chunks.at(-1)?.seq ?? 0) >= 1_000, 20_000, 'resume after reconnect');
    expect(seqs(r.chunks)).toEqual(range(1_000));
    expect(gateway.endpointHealth('re').connects).toBe(2);
  }, 30_000);

  it('a receiver that closes is seen as disconnected through its channel close', async () => {
    // heartbeats a minute apart and no closing of dead connections: within the wait below
    // nothing but the channel close can tell the gateway the receiver is gone
    await setup({ heartbeat: { intervalMs: 60_000, standbyIntervalMs: 60_000, closeDeadAfterMs: 0 } });
    gateway.createStream({ stream_id: 'bye', endpoint_list: ['bye'] });
    const r = await receiver('bye');
    expect(gateway.endpointHealth('bye').connected).toBe(true);
    const changes: EndpointHealthEvent[] = [];
    gateway.on('endpointHealth', (e) => e.endpointId === 'bye' && changes.push(e));
    r.rx.close();
    await until(() => gateway.endpointHealth('bye').state === 'disconnected', 5_000, 'disconnect', { state: () => gateway.endpointHealth('bye') });
    // straight from alive: no detector verdict came first
    expect(changes.map((e) => `${e.previous}->${e.state}`)).toEqual(['alive->disconnected']);
  }, 20_000);
});
