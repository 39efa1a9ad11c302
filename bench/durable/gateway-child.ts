/**
 * One gateway of the durable bench's ingest section in a process of its own (its heap, its
 * event loop: as deployed), serving HTTP on a free port with one stream `ingest` and no
 * endpoints. Its configuration comes as JSON in argv[2]; it answers `cpu` with its CPU time.
 */
import { createGateway, serve, type GatewayConfigInput } from '../../gateway/src/index.js';

export type ToGatewayChild = { cmd: 'cpu' };
export type FromGatewayChild = { ev: 'listening'; url: string } | { ev: 'cpu'; us: number } | { ev: 'failed'; error: string };

const send = (m: FromGatewayChild): void => void process.send?.(m);
const config = JSON.parse(process.argv[2] ?? '{}') as GatewayConfigInput;
const apiKey = process.argv[3] ?? '';
try {
  const gateway = createGateway(config);
  await gateway.start();
  const server = await serve(gateway, { apiKey, host: '127.0.0.1', port: 0 });
  await gateway.createStream({ stream_id: 'ingest', endpoint_list: [] });
  process.on('message', (m: ToGatewayChild) => {
    if (m.cmd !== 'cpu') return;
    const c = process.cpuUsage();
    send({ ev: 'cpu', us: c.user + c.system });
  });
  process.on('disconnect', () => {
    void server
      .close()
      .then(() => gateway.close())
      .finally(() => process.exit(0));
  });
  send({ ev: 'listening', url: server.url });
} catch (error) {
  send({ ev: 'failed', error: String(error) });
  process.exit(1);
}
