/**
 * A Node receiver: connects over WebRTC, prints every 100th tick, its role changes and
 * gaps. Run the producer first; it prints this command line with a token.
 *
 *   npx tsx examples/node-receiver.ts <endpointId> <token> [gatewayUrl[,gatewayUrl…]]
 *
 * Several comma-separated URLs (gateway instances on one NATS): it moves to the next when one is lost.
 */
import { Receiver } from '@mirrorstream/receiver/node';

const [endpointId, token, gatewayUrl = process.env.MIRRORSTREAM_URL ?? 'http://127.0.0.1:8080'] = process.argv.slice(2);
if (!endpointId || !token) {
  console.error('usage: npx tsx examples/node-receiver.ts <endpointId> <token> [gatewayUrl[,gatewayUrl…]]');
  process.exit(2);
}

// the examples run against a local gateway: gather only loopback (set MIRRORSTREAM_RTC_BIND='' for all interfaces)
const bind = process.env.MIRRORSTREAM_RTC_BIND ?? '127.0.0.1';
const rx = new Receiver({ gatewayUrl: gatewayUrl.split(','), endpointId, token, ...(bind ? { rtcConfig: { bindAddress: bind } } : {}) });
const text = new TextDecoder();
rx.on('status', (status, detail) => console.log(`[${endpointId}] ${status} (${detail}) ${rx.gatewayUrl ?? ''}`));
rx.on('role', (r) => console.log(`[${endpointId}] ${r.streamId}: ${r.role} from seq ${r.fromSeq}`));
rx.on('gap', (g) => console.log(`[${endpointId}] ${g.streamId}: gap ${g.from}..${g.to} (${g.reason})`));
rx.on('chunk', (c) => {
  if (c.seq % 100 === 0) console.log(`[${endpointId}] ${c.streamId} #${c.seq} ${text.decode(c.payload)}`);
});
rx.on('error', (e) => console.error(`[${endpointId}] ${e.code}: ${e.message}`));
await rx.connect();
process.on('SIGINT', () => {
  rx.close();
  process.exit(0);
});
