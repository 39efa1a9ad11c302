/**
 * A producer for a running gateway (`npm start`): creates a failover stream for three
 * endpoints, prints a token per endpoint, then publishes a market tick every 20 ms
 * through the HTTP API.
 *
 *   MIRRORSTREAM_API_KEY=... npx tsx examples/producer.ts [gatewayUrl]
 */
const gatewayUrl = process.argv[2] ?? process.env.MIRRORSTREAM_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.MIRRORSTREAM_API_KEY;
if (!apiKey) {
  console.error('set MIRRORSTREAM_API_KEY to the key `npm start` printed');
  process.exit(2);
}
const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${gatewayUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok && res.status !== 409) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

const endpoints = ['primary', 'backup1', 'backup2'];
await api('POST', '/v1/streams', { stream_id: 'ticks', endpoint_list: endpoints, mode: 'failover' });
for (const id of endpoints) {
  const { token } = (await (await api('POST', `/v1/endpoints/${id}/token`, { ttl_s: 86_400 })).json()) as { token: string };
  console.log(`npx tsx examples/node-receiver.ts ${id} ${token}`);
}

let px = 100;
let n = 0;
setInterval(() => {
  px = Math.max(1, px + (Math.random() - 0.5) * 0.2);
  const chunks = [{ json: { sym: 'ACME', px: Number(px.toFixed(2)), n: ++n, t: Date.now() }, key: 'ACME' }];
  api('POST', '/v1/streams/ticks/chunks', { chunks })
    .then(async (res) => {
      if (n % 250 === 0) console.log('published up to seq', ((await res.json()) as { last_seq: number }).last_seq);
    })
    .catch((e: unknown) => console.error(String(e)));
}, 20);
