import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createGateway, serve } from '../../gateway/src/index.js';
import { MirrorstreamError } from '../../receiver-sdk/src/protocol/index.js';
import { Receiver } from '../../receiver-sdk/src/node.js';
import { bindUdp, bindUdpRun, closeUdp } from '../helpers/udp-ports.js';
import { until, withDeadline } from '../helpers/poll.js';

/** Whether another socket can bind the port right now (it is released again at once). */
async function bindable(port: number): Promise<boolean> {
  const s = await bindUdp(port);
  await closeUdp(s);
  return s !== undefined;
}

const options = (icePort: number, icePortCount: number) =>
  ({ logLevel: 'silent', webrtc: { engine: 'node-datachannel', bindAddress: '127.0.0.1', icePort, icePortCount }, webtransport: { enabled: false } }) as const;

/**
 * ICE UDP mux ports (node-datachannel): the engine claims every port at start and holds it
 * for its lifetime. libjuice binds a mux port when the first session on it gathers and lets
 * it go after the last; a port taken meanwhile made gathering throw on a native thread,
 * which aborted the whole gateway process.
 */
describe('ICE ports', () => {
  it('sessions share the ports, which stay held between sessions and are let go at close', async () => {
    const { port, sockets } = await bindUdpRun(2);
    await Promise.all(sockets.map((s) => closeUdp(s)));
    const gateway = createGateway(options(port, 2));
    await gateway.start();
    const server = await serve(gateway, { apiKey: 'ice-ports-api-key-0123', port: 0 });
    const receivers: Receiver[] = [];
    try {
      expect(await bindable(port)).toBe(false);
      expect(await bindable(port + 1)).toBe(false);
      const got = new Map<string, number>();
      for (const id of ['a', 'b', 'c']) {
        await gateway.createStream({ stream_id: `s-${id}`, endpoint_list: [id] });
        const { token } = await gateway.issueToken(id);
        const rx = new Receiver({ gatewayUrl: server.url, endpointId: id, token, transports: ['webrtc'], rtcConfig: { bindAddress: '127.0.0.1' } });
        rx.on('chunk', () => got.set(id, (got.get(id) ?? 0) + 1));
        receivers.push(rx);
        await withDeadline(rx.connect(), 15_000, `${id} connected`);
      }
      for (let i = 0; i < 20; i++) for (const id of ['a', 'b', 'c']) await gateway.publish(`s-${id}`, `x${i}`);
      await until(() => ['a', 'b', 'c'].every((id) => got.get(id) === 20), 10_000, 'every receiver got its 20 chunks');
      for (const rx of receivers.splice(0)) rx.close();
      await until(() => gateway.listEndpoints().every((e) => !e.connected), 10_000, 'sessions gone');
      // no session left: the ports are still ours
      expect(await bindable(port)).toBe(false);
      expect(await bindable(port + 1)).toBe(false);
    } finally {
      for (const rx of receivers) rx.close();
      await gateway.close();
      await server.close();
    }
    // closing the engine lets the ports go (libdatachannel tears its ICE agents down on its own threads)
    await until(async () => (await bindable(port)) && (await bindable(port + 1)), 5_000, 'the ICE ports free again', { everyMs: 50 });
    expect(await bindable(port)).toBe(true);
    expect(await bindable(port + 1)).toBe(true);
  }, 40_000);

  it('a port taken by another process: start fails with MS_ICE_PORT_IN_USE, the process lives on, and once it is free WebRTC works', async () => {
    const { port, sockets } = await bindUdpRun(1);
    const gateway = createGateway(options(port, 1));
    const server = await serve(gateway, { apiKey: 'ice-ports-api-key-0123', port: 0 });
    try {
      const failed = await gateway.start().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(MirrorstreamError);
      expect((failed as MirrorstreamError).code).toBe('MS_ICE_PORT_IN_USE');
      expect((failed as MirrorstreamError).message).toContain(String(port));

      // signaling answers the same coded error (503), not a crash and not a 400
      await gateway.createStream({ stream_id: 's', endpoint_list: ['rx'] });
      const { token } = await gateway.issueToken('rx');
      const res = await fetch(`${server.url}/v1/endpoints/rx/webrtc`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' },
        body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=sctp-port:5000\r\n',
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MS_ICE_PORT_IN_USE');

      await Promise.all(sockets.splice(0).map((s) => closeUdp(s)));
      await gateway.start();
      const rx = new Receiver({ gatewayUrl: server.url, endpointId: 'rx', token, transports: ['webrtc'], rtcConfig: { bindAddress: '127.0.0.1' } });
      let got = 0;
      rx.on('chunk', () => got++);
      try {
        await withDeadline(rx.connect(), 15_000, 'connected once the port is free');
        for (let i = 0; i < 10; i++) await gateway.publish('s', `x${i}`);
        await until(() => got === 10, 10_000, '10 chunks');
      } finally {
        rx.close();
      }
    } finally {
      await Promise.all(sockets.map((s) => closeUdp(s)));
      await gateway.close();
      await server.close();
    }
  }, 40_000);

  it('the CLI refuses to start on a taken ICE port: exit code 2 and the code on stderr', async () => {
    const { port, sockets } = await bindUdpRun(1);
    let proc: ReturnType<typeof spawn> | undefined;
    try {
      const cli = fileURLToPath(new URL('../../gateway/dist/cli.js', import.meta.url));
      proc = spawn(process.execPath, [cli, '--host', '127.0.0.1', '--port', '0', '--api-key', 'ice-ports-api-key-0123', '--webrtc-bind-address', '127.0.0.1', '--webrtc-ice-port', String(port), '--webrtc-ice-port-count', '1', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = proc;
      const code = await withDeadline(new Promise<number | null>((r) => exited.once('exit', (c) => r(c))), 15_000, 'CLI exit');
      expect(code).toBe(2);
      expect(stderr).toContain('MS_ICE_PORT_IN_USE');
    } finally {
      // a CLI that did not refuse would run on: it goes with the test
      if (proc && proc.exitCode === null) proc.kill('SIGKILL');
      await Promise.all(sockets.map((s) => closeUdp(s)));
    }
  }, 20_000);
});
