import dgram from 'node:dgram';

/** A UDP socket bound on 127.0.0.1:`port`, or undefined when the port is taken. */
export function bindUdp(port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(undefined));
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

export const closeUdp = (s: dgram.Socket | undefined): Promise<void> => new Promise((r) => (s ? s.close(() => r()) : r()));

/**
 * Sockets bound on `count` consecutive UDP ports of 127.0.0.1, below Linux's ephemeral range
 * (other tests' sockets do not land there): hold them to make the ports taken, or close them
 * to hand the ports to a gateway's ICE port range.
 */
export async function bindUdpRun(count: number): Promise<{ port: number; sockets: dgram.Socket[] }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 20_000);
    const sockets = await Promise.all(Array.from({ length: count }, (_, i) => bindUdp(port + i)));
    if (sockets.every((s) => s !== undefined)) return { port, sockets: sockets as dgram.Socket[] };
    await Promise.all(sockets.map((s) => closeUdp(s)));
  }
  throw new Error(`no ${count} consecutive free UDP ports`);
}
