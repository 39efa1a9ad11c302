import dgram from 'node:dgram';

function bind(port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(undefined));
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

/**
 * The first of `count` consecutive UDP ports free on 127.0.0.1 right now (bound, then released),
 * for the gateway's ICE ports: below Linux's ephemeral range (32768-60999), where the receivers'
 * own sockets would otherwise take one before the gateway claims it.
 */
export async function freeUdpPorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 10_000 + Math.floor(Math.random() * (22_000 - count));
    const sockets = await Promise.all(Array.from({ length: count }, (_, i) => bind(first + i)));
    await Promise.all(sockets.map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r()))));
    if (sockets.every(Boolean)) return first;
  }
  throw new Error(`no ${count} consecutive free UDP ports found`);
}
