import type { Gateway } from '../../gateway/src/index.js';
import { MemoryTransport } from '../../gateway/src/index.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';

/**
 * A receiver on an in-memory transport to `gateway` (the SDK's ReceiverCore), connected; its
 * chunks collect in the returned array. It is pushed on `open` so the test can close it.
 */
export async function memoryReceiver(gateway: Gateway, endpointId: string, open: ReceiverCore[]): Promise<Chunk[]> {
  const rx = memoryReceiverCore(gateway, endpointId);
  open.push(rx);
  const got: Chunk[] = [];
  rx.on('chunk', (c) => got.push(c));
  await rx.connect();
  return got;
}

/** The SDK's ReceiverCore dialing `gateway` in memory, a new pair per dial (not connected yet; the benches use it too). */
export function memoryReceiverCore(gateway: Gateway, endpointId: string): ReceiverCore {
  return new ReceiverCore({
    endpointId,
    dial: async () => {
      const [gatewaySide, receiverSide] = MemoryTransport.pair();
      gateway.accept(gatewaySide, { endpointId });
      return receiverSide;
    },
  });
}
