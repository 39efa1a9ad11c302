/**
 * One gateway of the durable bench's ingest section in a process of its own (its heap, its
 * event loop: as deployed), serving HTTP on a free port with two streams: `ingest` with no
 * endpoints, and `ingest-rx` with one receiver in this process (MemoryTransport), whose
 * deliveries it counts. Its configuration comes as JSON in argv[2]; it answers `cpu` with its
 * CPU time and the chunks delivered so far, and `publish` with a run of its own publishBatch.
 * It runs the built packages (dist, as `npm start` does), not the sources through tsx, whose
 * transform costs a gateway a third of its speed.
 */
import { createGateway, MemoryTransport, serve, type GatewayConfigInput } from '@mirrorstream/gateway';
import { ReceiverCore } from '@mirrorstream/receiver';

export type ToGatewayChild = { cmd: 'cpu' } | { cmd: 'publish'; streamId: string; ms: number; batch: number; chunkBytes: number; fresh: boolean };
export type FromGatewayChild =
  | { ev: 'listening'; url: string }
  | { ev: 'cpu'; us: number; delivered: number }
  | { ev: 'failed'; error: string }
  | { ev: 'published'; chunks: number; seconds: number };

const send = (m: FromGatewayChild): void => void process.send?.(m);
const config = JSON.parse(process.argv[2] ?? '{}') as GatewayConfigInput;
const apiKey = process.argv[3] ?? '';
try {
  const gateway = createGateway(config);
  await gateway.start();
  const server = await serve(gateway, { apiKey, host: '127.0.0.1', port: 0 });
  await gateway.createStream({ stream_id: 'ingest', endpoint_list: [] });
  await gateway.createStream({ stream_id: 'ingest-rx', endpoint_list: ['rx'] });
  let delivered = 0;
  const rx = new ReceiverCore({
    endpointId: 'rx',
    dial: async () => {
      const [gatewaySide, receiverSide] = MemoryTransport.pair();
      gateway.accept(gatewaySide, { endpointId: 'rx' });
      return receiverSide;
    },
  });
  rx.on('chunk', () => delivered++);
  await rx.connect();
  process.on('message', (m: ToGatewayChild) => {
    if (m.cmd === 'cpu') {
      const c = process.cpuUsage();
      send({ ev: 'cpu', us: c.user + c.system, delivered });
    } else if (m.cmd === 'publish') void publishInProcess(m.streamId, m.ms, m.batch, m.chunkBytes, m.fresh).then(send);
  });
  process.on('disconnect', () => {
    rx.close();
    void server
      .close()
      .then(() => gateway.close())
      .finally(() => process.exit(0));
  });
  send({ ev: 'listening', url: server.url });

  /** The in-process path, no network: publishBatch of `batch` chunks, one after the other (each awaited), for `ms`; `fresh`: a payload per chunk. */
  async function publishInProcess(streamId: string, ms: number, batch: number, chunkBytes: number, fresh: boolean): Promise<FromGatewayChild> {
    const payload = new Uint8Array(chunkBytes).fill(120);
    const chunks = Array.from({ length: batch }, () => ({ payload }));
    let published = 0;
    const t0 = performance.now();
    while (performance.now() < t0 + ms) published += (await gateway.publishBatch(streamId, fresh ? chunks.map(() => ({ payload: payload.slice() })) : chunks)).count;
    return { ev: 'published', chunks: published, seconds: (performance.now() - t0) / 1000 };
  }
} catch (error) {
  send({ ev: 'failed', error: String(error) });
  process.exit(1);
}
