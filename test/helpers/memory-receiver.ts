import type { Gateway } from '../../gateway/src/index.js';
import { MemoryTransport } from '../../gateway/src/index.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';

/**
 * A receiver on an in-memory transport to `gateway` (the SDK's ReceiverCore), connected; its
 * chunks collect in the returned array. It is pushed on `open` so the test can close it.
 */
export async function memoryReceiver(gateway: Gateway, endpointId: string, open: ReceiverCore[]): Promise<Chunk[]> {
  const [g, link] = MemoryTransport.pair();
  const rx = new ReceiverCore({ endpointId, dial: async () => (gateway.accept(g, { endpointId }), link) });
  open.push(rx);
  const got: Chunk[] = [];
  rx.on('chunk', (c) => got.push(c));
  await rx.connect();
  return got;
}
