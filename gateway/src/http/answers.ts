import { z } from 'zod';

/**
 * Schemas of the answers whose types live in the modules that make them (core/ingest.ts
 * BatchResult, signaling/tokens.ts IssuedToken, transports/webtransport/server.ts
 * WebTransportTicket). test/integration/openapi.test.ts holds each to its type.
 */

export const batchResultSchema = z.strictObject({
  stream_id: z.string(),
  first_seq: z.number().meta({ description: 'Seq of the first chunk of the batch.' }),
  last_seq: z.number().meta({ description: 'Seq of the last chunk; the batch holds first_seq..last_seq.' }),
  count: z.number(),
});

export const issuedTokenSchema = z.strictObject({
  endpoint_id: z.string(),
  token: z.string().meta({ description: 'An HS256 JWT admitting this endpoint only, for `Authorization: Bearer` on the signaling routes.' }),
  expires_at: z.iso.datetime(),
});

export const webTransportTicketSchema = z.strictObject({
  url: z.string().meta({ description: 'The single-use session URL (its ticket in the query), valid 30 s.' }),
  backend: z.enum(['http3', 'http2']),
  certificate_hashes: z
    .array(z.strictObject({ algorithm: z.literal('sha-256'), value: z.base64().meta({ description: "The certificate's SHA-256, base64." }) }))
    .meta({ description: 'For `new WebTransport(url, { serverCertificateHashes })` with a self-signed certificate.' }),
  expires_at: z.iso.datetime(),
  tunnel_path: z.string().meta({
    description: "The same session through the gateway's HTTP port (the browsers' WebSocket tunnel, `GET /v1/wt`), relative to the gateway's base URL.",
  }),
  self_signed: z.boolean().meta({
    description: "The gateway generated the listener's certificate: a browser trusts it only through `serverCertificateHashes` (native WebTransport, HTTP/3), never on the WebSocket tunnel to the listener.",
  }),
  cancel_path: z.string().meta({
    description: 'DELETE this, relative to the base URL and with the endpoint token, to give the ticket back unused (its receiver could not reach the listener): its signaling slot is freed at once instead of at expiry.',
  }),
});
