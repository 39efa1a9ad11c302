import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DelayLine,
  ImpairmentModel,
  TcpRelay,
  UdpRelay,
  candidateAddresses,
  ownAddresses,
  rewriteCandidateLine,
  rewriteCandidates,
  validateImpairment,
} from '../../netsim/index.js';
import { until } from '../helpers/poll.js';
import { mulberry32 } from '../helpers/random.js';

const LOOPBACK = '127.0.0.1';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function udpSocket(onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo, socket: dgram.Socket) => void): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => onMessage(msg, rinfo, socket));
  await new Promise<void>((resolve) => socket.bind({ address: LOOPBACK, port: 0 }, resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket;
}

/** Echo server, a relay in front of it, and a client that records what comes back. */
async function udpSetup(opts: { random?: () => number } = {}) {
  const server = { received: 0 };
  const echo = await udpSocket((msg, rinfo, s) => {
    server.received++;
    s.send(msg, rinfo.port, rinfo.address);
  });
  const relay = await UdpRelay.start({ target: { host: LOOPBACK, port: echo.address().port }, ...opts });
  cleanups.push(() => relay.close());
  const echoed: number[] = [];
  const client = await udpSocket((msg) => echoed.push(msg.readUInt32BE(0)));
  const send = (seq: number, size = 16): void => {
    const buf = Buffer.alloc(size);
    buf.writeUInt32BE(seq, 0);
    client.send(buf, relay.port, LOOPBACK);
  };
  return { server, relay, echoed, send };
}

describe('netsim impairment model (fake clock)', () => {
  it('paces by rate with no initial burst, then adds delay and keeps FIFO under jitter', () => {
    let now = 0;
    const m = new ImpairmentModel({ rateBytesPerSec: 1000, delayMs: 50 }, { now: () => now });
    expect(m.schedule(100)).toBe(50); // departs at 0
    expect(m.schedule(100)).toBe(150); // waits 100 ms for the first one
    expect(m.backlogBytes()).toBe(200);
    now = 150;
    expect(m.backlogBytes()).toBe(50);

    const rnd = [0.99, 0.0, 0.5];
    const j = new ImpairmentModel({ delayMs: 20, jitterMs: 10 }, { now: () => 0, random: () => rnd.shift() ?? 0.5 });
    expect(j.schedule(1)).toBeCloseTo(29.8);
    expect(j.schedule(1)).toBeCloseTo(29.8); // would be 10, FIFO holds it behind
    const r = new ImpairmentModel({ delayMs: 20, jitterMs: 10, reorder: true }, { now: () => 0, random: () => 0 });
    r.schedule(1);
    expect(r.schedule(1)).toBe(10);
  });

  it('drops by blackhole, loss and queue, counting each', () => {
    let now = 0;
    const m = new ImpairmentModel({ rateBytesPerSec: 1000, queueBytes: 250 }, { now: () => now, random: () => 0.5 });
    expect(m.offer(100).kind).toBe('forward');
    expect(m.offer(100).kind).toBe('forward');
    expect(m.offer(100)).toEqual({ kind: 'drop', reason: 'queue' });
    now = 100;
    expect(m.offer(100).kind).toBe('forward');
    m.update({ lossPct: 60 });
    expect(m.offer(10)).toEqual({ kind: 'drop', reason: 'loss' });
    m.update({ blackhole: true });
    expect(m.offer(10)).toEqual({ kind: 'drop', reason: 'blackhole' });
    expect(m.stats()).toMatchObject({
      packetsIn: 6,
      bytesIn: 420,
      packetsDroppedQueue: 1,
      packetsDroppedLoss: 1,
      packetsBlackholed: 1,
      bytesBlackholed: 10,
    });
  });

  it('delivers in time order with one timer, never early', () => {
    let now = 0;
    const timers: { fn: () => void; at: number }[] = [];
    const out: string[] = [];
    const line = new DelayLine<string>((s) => out.push(s), {
      now: () => now,
      setTimer: (fn, ms) => timers.push({ fn, at: now + ms }),
      clearTimer: () => undefined,
    });
    line.push(0, 'now');
    line.push(20, 'b');
    line.push(10, 'a');
    line.push(20, 'c');
    expect(out).toEqual(['now']);
    now = 15;
    timers.at(-1)?.fn();
    expect(out).toEqual(['now', 'a']);
    now = 20;
    timers.at(-1)?.fn();
    expect(out).toEqual(['now', 'a', 'b', 'c']);
    expect(line.size).toBe(0);
  });
});

describe('netsim settings validation', () => {
  it('throws a TypeError naming the bad field', () => {
    expect(() => validateImpairment({ lossPct: Number.NaN })).toThrowError(/lossPct must be a finite number/);
    expect(() => validateImpairment({ lossPct: 101 })).toThrowError(TypeError);
    expect(() => validateImpairment({ delayMs: -1 })).toThrowError(/delayMs must be between/);
    expect(() => validateImpairment({ jitterMs: Infinity })).toThrowError(TypeError);
    expect(() => validateImpairment({ rateBytesPerSec: -5 })).toThrowError(TypeError);
    expect(() => validateImpairment({ queueBytes: 0 })).toThrowError(/queueBytes/);
    expect(() => validateImpairment({ blackhole: 'yes' })).toThrowError(/blackhole must be a boolean/);
    expect(() => validateImpairment({ loss: 5 })).toThrowError(/unknown impairment setting "loss"/);
    expect(() => validateImpairment({ toString: 5 })).toThrowError(TypeError);
    expect(() => validateImpairment(null)).toThrowError(TypeError);
    expect(validateImpairment({ lossPct: 0, delayMs: 5, reorder: true })).toEqual({ lossPct: 0, delayMs: 5, reorder: true });
  });

  it('refuses non-loopback targets and bad directions, and applies nothing on error', async () => {
    await expect(UdpRelay.start({ target: { host: '10.0.0.1', port: 9 } })).rejects.toThrowError(/loopback/);
    await expect(TcpRelay.start({ target: { host: 'localhost', port: 9 } })).rejects.toThrowError(TypeError);
    await expect(UdpRelay.start({ target: { host: LOOPBACK, port: 0 } })).rejects.toThrowError(/target.port/);
    const relay = await UdpRelay.start({ target: { host: LOOPBACK, port: 9 } });
    cleanups.push(() => relay.close());
    expect(() => relay.set({ delayMs: 10, jitterMs: -1 })).toThrowError(TypeError);
    expect(relay.impairment('up').delayMs).toBe(0);
    expect(() => relay.set({ delayMs: 10 }, 'sideways' as never)).toThrowError(/direction/);
    expect(relay.impairment('down').delayMs).toBe(0);
  });

  const own = ownAddresses()[0];
  it(
    own
      ? "listens on this machine's own address where asked (a browser pairs with it), and the target sees the client there; never on another host's"
      : "never listens on another host's address (this machine has no non-loopback IPv4 address: a relay on one of its own is not tried)",
    async () => {
      await expect(UdpRelay.start({ target: { host: LOOPBACK, port: 9 }, listenHost: '203.0.113.7' })).rejects.toThrowError(/address of this machine/);
      if (!own) return;
      const target = dgram.createSocket('udp4');
      const client = dgram.createSocket('udp4');
      cleanups.push(() => new Promise<void>((r) => target.close(() => r())), () => new Promise<void>((r) => client.close(() => r())));
      const seenAt: string[] = [];
      target.on('message', (msg, rinfo) => {
        seenAt.push(rinfo.address);
        target.send(msg, rinfo.port, rinfo.address);
      });
      await new Promise<void>((r) => target.bind(0, LOOPBACK, () => r()));
      const relay = await UdpRelay.start({ target: { host: LOOPBACK, port: target.address().port }, listenHost: own });
      cleanups.push(() => relay.close());
      expect(relay.host).toBe(own);
      const echoed = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
      await new Promise<void>((r) => client.bind(0, own, () => r()));
      client.send('ping', relay.port, own);
      expect(await echoed).toBe('ping');
      expect(seenAt).toEqual([own]);
    },
  );

  it('TcpRelay refuses lossPct and reorder', async () => {
    const relay = await TcpRelay.start({ target: { host: LOOPBACK, port: 9 } });
    cleanups.push(() => relay.close());
    expect(() => relay.set({ lossPct: 5 } as never)).toThrowError(/does not support lossPct/);
    expect(() => relay.set({ reorder: true } as never)).toThrowError(/reorder/);
    relay.set({ delayMs: 1 }, 'up');
    expect(relay.impairment('up').delayMs).toBe(1);
  });
});

describe('netsim UdpRelay', () => {
  /** Send `n` packets in bursts of `batch`, waiting for the relay to see each burst. */
  async function pump(t: Awaited<ReturnType<typeof udpSetup>>, n: number, batch = 50): Promise<void> {
    for (let seq = 0; seq < n; ) {
      const end = Math.min(n, seq + batch);
      for (; seq < end; seq++) t.send(seq);
      const sent = seq;
      await until(() => {
        const s = t.relay.stats();
        return s.up.packetsIn === sent && t.server.received === s.up.packetsForwarded && t.echoed.length === t.server.received;
      }, 3_000, `burst ending at ${sent}`);
    }
  }

  it('relays 1000 packets both ways, in order, without impairment', async () => {
    const t = await udpSetup();
    await pump(t, 1000);
    expect(t.echoed).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const s = t.relay.stats();
    expect(s.clients).toBe(1);
    expect(s.up).toMatchObject({ packetsIn: 1000, packetsForwarded: 1000, bytesForwarded: 16_000, packetsDroppedLoss: 0 });
    expect(s.down).toMatchObject({ packetsIn: 1000, packetsForwarded: 1000 });
  });

  it('drops exactly the packets the seeded PRNG says at 30% loss upstream', async () => {
    const t = await udpSetup({ random: mulberry32(42) });
    t.relay.set({ lossPct: 30 }, 'up');
    await pump(t, 1000);
    const replay = mulberry32(42);
    let expectedDrops = 0;
    for (let i = 0; i < 1000; i++) if (replay() * 100 < 30) expectedDrops++;
    const s = t.relay.stats();
    expect(t.echoed.length).toBeGreaterThan(630);
    expect(t.echoed.length).toBeLessThan(770);
    expect(t.echoed.length).toBe(1000 - expectedDrops);
    expect(s.up.packetsDroppedLoss).toBe(expectedDrops);
    expect(s.up.packetsForwarded).toBe(t.server.received);
    expect(s.down.packetsIn).toBe(t.server.received);
    expect(s.down.packetsDroppedLoss).toBe(0);
  });

  it('blackhole drops everything silently, and traffic flows again once lifted', async () => {
    const t = await udpSetup();
    t.relay.set({ blackhole: true });
    for (let i = 0; i < 20; i++) t.send(i);
    await until(() => t.relay.stats().up.packetsIn === 20, 3_000, 'packets to reach the relay');
    // each packet is judged as it arrives: all 20 are in, none went on (the relay's own count), so none can reach the server
    expect(t.relay.stats().up.packetsBlackholed).toBe(20);
    expect(t.relay.stats().up.packetsForwarded).toBe(0);
    expect(t.server.received).toBe(0);
    t.relay.set({ blackhole: false });
    for (let i = 100; i < 120; i++) t.send(i);
    await until(() => t.echoed.length === 20, 3_000, 'echoes after the blackhole');
    expect(t.echoed[0]).toBe(100);
  });

  it('adds delay on the chosen direction only', async () => {
    const t = await udpSetup();
    t.relay.set({ delayMs: 100 }, 'up');
    expect(t.relay.impairment('down').delayMs).toBe(0);
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      t.send(i);
      await until(() => t.echoed.length === i + 1, 3_000, 'delayed echo');
      const rtt = performance.now() - start;
      expect(rtt).toBeGreaterThanOrEqual(100);
      expect(rtt).toBeLessThan(1000);
    }
  });

  it('caps the rate: 50 x 1 KB at 100 KB/s takes about half a second', async () => {
    const t = await udpSetup();
    t.relay.set({ rateBytesPerSec: 100_000 }, 'up');
    const start = performance.now();
    for (let i = 0; i < 50; i++) t.send(i, 1000);
    await until(() => t.echoed.length === 50, 3_000, 'rate-limited echoes');
    expect(performance.now() - start).toBeGreaterThanOrEqual(350);
    expect(t.relay.stats().up).toMatchObject({ packetsForwarded: 50, packetsDroppedQueue: 0 });
  });

  it('drops what does not fit in the rate queue and counts it', async () => {
    const t = await udpSetup();
    t.relay.set({ rateBytesPerSec: 20_000, queueBytes: 4000 }, 'up');
    for (let i = 0; i < 20; i++) t.send(i, 1000);
    await until(() => {
      const s = t.relay.stats().up;
      return s.packetsIn === 20 && s.packetsForwarded + s.packetsDroppedQueue === 20;
    }, 3_000, 'queue to drain');
    const s = t.relay.stats().up;
    expect(s.packetsDroppedQueue).toBeGreaterThanOrEqual(10);
    expect(s.bytesDroppedQueue).toBe(s.packetsDroppedQueue * 1000);
    await until(() => t.echoed.length === s.packetsForwarded, 3_000, 'forwarded packets to echo');
  });

  it('keeps a separate upstream socket per client', async () => {
    const t = await udpSetup();
    const other: number[] = [];
    const second = await udpSocket((msg) => other.push(msg.readUInt32BE(0)));
    t.send(1);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(2);
    second.send(b, t.relay.port, LOOPBACK);
    await until(() => t.echoed.length === 1 && other.length === 1, 3_000, 'both clients');
    expect([t.echoed[0], other[0]]).toEqual([1, 2]);
    expect(t.relay.stats().clients).toBe(2);
    await t.relay.close();
    await t.relay.close(); // idempotent
  });
});

describe('netsim TcpRelay', () => {
  async function tcpSetup() {
    const serverSockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      serverSockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => serverSockets.delete(s));
      s.pipe(s);
    });
    await new Promise<void>((resolve) => server.listen({ host: LOOPBACK, port: 0 }, resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of serverSockets) s.destroy();
          server.close(() => resolve());
        }),
    );
    const relay = await TcpRelay.start({ target: { host: LOOPBACK, port: (server.address() as net.AddressInfo).port } });
    cleanups.push(() => relay.close());
    const client = net.connect({ host: LOOPBACK, port: relay.port });
    const events = { received: [] as Buffer[], bytes: 0, closed: false, error: undefined as string | undefined };
    client.on('data', (b: Buffer) => {
      events.received.push(b);
      events.bytes += b.length;
    });
    client.on('error', (e: NodeJS.ErrnoException) => (events.error = e.code));
    client.on('close', () => (events.closed = true));
    cleanups.push(() => client.destroy());
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    return { relay, client, events, serverSockets };
  }

  const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) % 251));

  it('keeps bytes in order through delay and jitter', async () => {
    const t = await tcpSetup();
    t.relay.set({ delayMs: 20, jitterMs: 15 });
    const data = pattern(100 * 1024);
    for (let off = 0; off < data.length; off += 1024) t.client.write(data.subarray(off, off + 1024));
    await until(() => t.events.bytes === data.length, 5000, 'all echoed bytes');
    expect(Buffer.concat(t.events.received).equals(data)).toBe(true);
    const s = t.relay.stats();
    expect(s.up.bytesForwarded).toBe(data.length);
    expect(s.down.bytesForwarded).toBe(data.length);
    expect(s.connections).toBe(1);
  });

  it('caps the rate with backpressure instead of drops', async () => {
    const t = await tcpSetup();
    t.relay.set({ rateBytesPerSec: 200_000, queueBytes: 16 * 1024 }, 'up');
    const data = pattern(100 * 1024);
    const start = performance.now();
    t.client.write(data);
    await until(() => t.events.bytes === data.length, 5000, 'rate-limited echo');
    expect(performance.now() - start).toBeGreaterThanOrEqual(400);
    expect(Buffer.concat(t.events.received).equals(data)).toBe(true);
    expect(t.relay.stats().up.packetsDroppedQueue).toBe(0);
  });

  it('reset() aborts the connection for the client', async () => {
    const t = await tcpSetup();
    t.client.write('ping');
    await until(() => t.events.bytes === 4, 3_000, 'ping echo');
    t.relay.reset();
    await until(() => t.events.closed, 3_000, 'client to see the reset');
    expect(t.events.error).toBe('ECONNRESET');
    await until(() => t.relay.stats().connections === 0 && t.serverSockets.size === 0, 3_000, 'both sides gone');
  });

  it('blackhole freezes the stream without closing it, and lifting it delivers the held bytes', async () => {
    const t = await tcpSetup();
    t.client.write('ping');
    await until(() => t.events.bytes === 4, 3_000, 'ping echo');
    t.relay.set({ blackhole: true });
    t.client.write('hello');
    await until(() => t.relay.stats().up.bytesIn === 9, 3_000, 'bytes to reach the relay');
    // the 5 new bytes are in and held (the relay forwarded only 'ping'): nothing more can come back
    expect(t.relay.stats().up.bytesBlackholed).toBe(5);
    expect(t.relay.stats().up.bytesForwarded).toBe(4);
    expect(t.events.bytes).toBe(4);
    expect(t.events.closed).toBe(false);
    t.relay.set({ blackhole: false });
    await until(() => t.events.bytes === 9, 3_000, 'held bytes after the blackhole');
    expect(Buffer.concat(t.events.received).toString()).toBe('pinghello');
  });
});

describe('netsim SDP candidate rewriting', () => {
  const sdp = [
    'v=0',
    'o=- 46117 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'm=application 50000 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 127.0.0.1',
    'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0',
    'a=candidate:2 1 udp 2122260223 4f1c2a9e-2b1d-4c55-9a0e-8d1f3b2c7e11.local 50001 typ host generation 0',
    'a=candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0',
    'a=candidate:4 1 udp 1686052607 203.0.113.7 50002 typ srflx raddr 127.0.0.1 rport 50000',
    'a=sctp-port:5000',
    '',
  ].join('\r\n');
  const toRelay = (host: string, port: number) => (host === '127.0.0.1' && port === 50000 ? { host: '127.0.0.1', port: 40000 } : null);

  it('lists candidate addresses', () => {
    expect(candidateAddresses(sdp)).toEqual([
      { host: '127.0.0.1', port: 50000, type: 'host', protocol: 'udp', component: 1 },
      { host: '4f1c2a9e-2b1d-4c55-9a0e-8d1f3b2c7e11.local', port: 50001, type: 'host', protocol: 'udp', component: 1 },
      { host: '127.0.0.1', port: 9, type: 'host', protocol: 'tcp', component: 1 },
      { host: '203.0.113.7', port: 50002, type: 'srflx', protocol: 'udp', component: 1 },
    ]);
  });

  it('rewrites address and port, drops unmapped candidates, keeps CRLF and other fields', () => {
    const out = rewriteCandidates(sdp, toRelay);
    expect(out).toContain('a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host generation 0\r\n');
    expect(candidateAddresses(out)).toHaveLength(1);
    expect(out).toContain('m=application 40000 UDP/DTLS/SCTP webrtc-datachannel\r\n');
    expect(out).toContain('\r\nc=IN IP4 127.0.0.1\r\n');
    expect(out).toContain('o=- 46117 2 IN IP4 127.0.0.1\r\n');
    expect(out.endsWith('a=sctp-port:5000\r\n')).toBe(true);
    expect(out.split('\r\n')).toHaveLength(sdp.split('\r\n').length - 3);

    const lf = rewriteCandidates(sdp.replace(/\r\n/g, '\n'), toRelay);
    expect(lf).not.toContain('\r');
    expect(lf).toContain('127.0.0.1 40000 typ host');
  });

  it('rewrites c= only when its address was a rewritten candidate host', () => {
    const moved = rewriteCandidates(sdp, (host, port) => (port === 50000 ? { host: '127.0.0.2', port: 40000 } : { host, port }));
    expect(moved).toContain('\r\nc=IN IP4 127.0.0.2\r\n');
    expect(moved).toContain('raddr 127.0.0.1 rport 50000'); // related address untouched
    const other = sdp.replace('c=IN IP4 127.0.0.1', 'c=IN IP4 0.0.0.0');
    expect(rewriteCandidates(other, toRelay)).toContain('c=IN IP4 0.0.0.0\r\n');
  });

  it('rewrites a trickled candidate line', () => {
    const line = 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0';
    expect(rewriteCandidateLine(line, toRelay)).toBe('candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host generation 0');
    expect(rewriteCandidateLine(line.replace('50000', '1'), toRelay)).toBeNull();
    expect(rewriteCandidateLine('a=mid:0', toRelay)).toBe('a=mid:0');
  });
});
