/**
 * A receiver that listens: the gateway dials it. Start it, then put it in a stream's
 * endpoint_list with the url it prints; it prints every 100th chunk, its role changes and gaps.
 *
 *   npx tsx examples/listening-receiver.ts <endpointId> [port] [token]
 *
 * The token (default: a random one, printed) is the secret the gateway must present. Add the
 * endpoint, e.g. as the second in line of a stream:
 *
 *   curl -X POST http://127.0.0.1:8080/v1/streams/feed/endpoints -H "authorization: Bearer $API_KEY" \
 *     -H 'content-type: application/json' -d '{"endpoint_id":"dc1","url":"<url>","token":"<token>","priority":1}'
 *
 * With TLS (the gateway verifies the certificate, or pins it with dialOut.pinSha256), pass
 * `tls: { key, cert }` to listen().
 */
import { randomBytes } from 'node:crypto';
import { listen } from '@mirrorstream/receiver/node';

const [endpointId, port = '0', token = randomBytes(24).toString('base64url')] = process.argv.slice(2);
if (!endpointId) {
  console.error('usage: npx tsx examples/listening-receiver.ts <endpointId> [port] [token]');
  process.exit(2);
}

// loopback by default (the gateway's dialOut.allow default too); set MIRRORSTREAM_LISTEN_HOST=0.0.0.0 to listen on every interface
const host = process.env.MIRRORSTREAM_LISTEN_HOST ?? '127.0.0.1';
const bind = process.env.MIRRORSTREAM_RTC_BIND ?? (host === '127.0.0.1' ? '127.0.0.1' : '');
const rx = await listen({ endpointId, token, host, port: Number(port), ...(bind ? { rtcConfig: { bindAddress: bind } } : {}) });
const text = new TextDecoder();
console.log(`[${endpointId}] listening: ${JSON.stringify({ endpoint_id: endpointId, url: rx.url, token })}`);
rx.on('status', (status, detail) => console.log(`[${endpointId}] ${status} (${detail})`));
rx.on('role', (r) => console.log(`[${endpointId}] ${r.streamId}: ${r.role} from seq ${r.fromSeq}`));
rx.on('gap', (g) => console.log(`[${endpointId}] ${g.streamId}: gap ${g.from}..${g.to} (${g.reason})`));
rx.on('chunk', (c) => {
  if (c.seq % 100 === 0) console.log(`[${endpointId}] ${c.streamId} #${c.seq} ${text.decode(c.payload)}`);
});
rx.on('error', (e) => console.error(`[${endpointId}] ${e.code}: ${e.message}`));
process.on('SIGINT', () => void rx.close().then(() => process.exit(0)));
