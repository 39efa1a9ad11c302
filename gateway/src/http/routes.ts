import { z } from 'zod';
import type { ZodOpenApiOperationObject, ZodOpenApiResponseObject } from 'zod-openapi';
import type { ErrorCode } from '@mirrorstream/receiver/protocol';
import { IDEMPOTENCY_KEY } from '../core/ingest.js';
import { addEndpointSchema, idSchema, policySchema, reorderSchema, streamSpecInputSchema } from '../streams/spec.js';
import { endpointHealthSchema, gatewayReadinessSchema, gatewayStatusSchema, streamHealthSchema, streamInfoSchema } from '../views/schemas.js';
import { batchResultSchema, issuedTokenSchema, webTransportTicketSchema } from './answers.js';
import { jsonBatch, MSGPACK_TYPES, msgpackBatch, rawQuery } from './chunks.js';

/**
 * The HTTP API's one route table: server.ts serves each route from it and http/openapi.ts
 * documents each from it, so the two cannot drift. Bodies and answers are the zod schemas
 * that validate them.
 */

export type HttpMethod = 'get' | 'post' | 'put' | 'delete' | 'options';

/** Who may call: the API key, an endpoint token (signaling), or anyone. */
export type RouteAuth = 'apiKey' | 'endpointToken' | 'open';

export interface ApiRoute {
  readonly method: HttpMethod;
  /** OpenAPI form: `{name}` for a path parameter. */
  readonly path: string;
  readonly auth: RouteAuth;
  /** Error codes of this route beyond those every route with its auth may answer (openapi.ts). */
  readonly errors: readonly ErrorCode[];
  /** Its OpenAPI operation with the successful answers; openapi.ts adds the error answers. */
  readonly doc: ZodOpenApiOperationObject;
}

/** `POST /v1/endpoints/{id}/token`: an optional JSON body. */
export const tokenRequestSchema = z.strictObject({
  ttl_s: z
    .number()
    .int()
    .min(1)
    .max(30 * 24 * 3600)
    .optional()
    .meta({ description: "The token's lifetime in seconds (default: the gateway's tokens.ttlS)." }),
});

const json = (schema: z.ZodType, description: string, headers?: z.ZodObject): ZodOpenApiResponseObject => ({
  description,
  content: { 'application/json': { schema } },
  ...(headers ? { headers } : {}),
});
const jsonBody = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema } } });
const none = (description: string): ZodOpenApiResponseObject => ({ description });
const location = (what: string) => z.object({ Location: z.string().meta({ description: `The path of the new ${what}.` }) });

const streamId = { id: idSchema.meta({ description: 'The stream id.' }) };
const endpointId = { id: idSchema.meta({ description: 'The endpoint id.' }) };
const streamPath = { path: z.object(streamId) };
const endpointPath = { path: z.object(endpointId) };
const sessionPath = { path: z.object({ ...endpointId, session: z.string().meta({ description: 'The session id, from the Location of its POST.' }) }) };
const ticketPath = { path: z.object({ ...endpointId, ticket: z.string().meta({ description: "The ticket, as the ticket's `cancel_path` names it." }) }) };

const CORS = 'Open CORS (`Access-Control-Allow-Origin: *`): pages on other origins connect with the endpoint token.';
const sdp = (description: string) => ({ 'application/sdp': { schema: z.string().meta({ description }) } });
const WRITE_ERRORS: ErrorCode[] = ['MS_GATEWAY_CLOSED', 'MS_LOG_UNAVAILABLE'];

const routes = {
  health: {
    method: 'get',
    path: '/healthz',
    auth: 'open',
    errors: [],
    doc: {
      summary: 'Liveness: 200 while the process serves, draining too',
      responses: { 200: json(gatewayStatusSchema.extend({ version: z.string().meta({ description: "The gateway package's version." }) }), 'Status of this gateway') },
    },
  },
  readiness: {
    method: 'get',
    path: '/readyz',
    auth: 'open',
    errors: [],
    doc: {
      summary: 'Readiness for new receivers and publishers (for load balancers)',
      responses: { 200: json(gatewayReadinessSchema, 'Ready'), 503: json(gatewayReadinessSchema, 'Not ready: starting, draining, log_unavailable or not_following') },
    },
  },
  metrics: {
    method: 'get',
    path: '/metrics',
    auth: 'open',
    errors: [],
    doc: {
      summary: 'Prometheus metrics (counts, rates and ids, never payloads or tokens)',
      responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } } },
    },
  },
  openApi: {
    method: 'get',
    path: '/openapi.json',
    auth: 'open',
    errors: [],
    doc: {
      summary: 'This OpenAPI 3.1 document',
      responses: { 200: json(z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }), 'The OpenAPI document') },
    },
  },
  browserSdk: {
    method: 'get',
    path: '/sdk/{file}',
    auth: 'open',
    errors: ['MS_NOT_FOUND'],
    doc: {
      summary: 'The browser build of the receiver SDK (when built: `npm run build:browser`)',
      requestParams: { path: z.object({ file: z.string().meta({ description: 'mirrorstream-receiver.js, or its .map', examples: ['mirrorstream-receiver.js'] }) }) },
      responses: { 200: { description: 'An ES module', content: { 'text/javascript': { schema: z.string() } } } },
    },
  },
  webRtcPreflight: {
    method: 'options',
    path: '/v1/endpoints/{id}/webrtc',
    auth: 'open',
    errors: [],
    doc: { summary: 'CORS preflight of WebRTC signaling', requestParams: endpointPath, responses: { 204: none(CORS) } },
  },
  webRtcSessionPreflight: {
    method: 'options',
    path: '/v1/endpoints/{id}/webrtc/{session}',
    auth: 'open',
    errors: [],
    doc: { summary: 'CORS preflight of ending a WebRTC session', requestParams: sessionPath, responses: { 204: none(CORS) } },
  },
  openWebRtcSession: {
    method: 'post',
    path: '/v1/endpoints/{id}/webrtc',
    auth: 'endpointToken',
    errors: ['MS_PAYLOAD_TOO_LARGE', 'MS_UNSUPPORTED_MEDIA_TYPE', 'MS_TOO_MANY_SESSIONS', 'MS_OVERLOADED', 'MS_GATEWAY_CLOSED'],
    doc: {
      summary: 'WHEP-style WebRTC signaling: post an SDP offer, get the answer',
      description: `${CORS} DELETE the answer's Location to end the session.`,
      requestParams: endpointPath,
      requestBody: { required: true, content: sdp('An SDP offer with an m=application (SCTP) section, at most 64 KiB.') },
      responses: { 201: { description: 'The SDP answer', content: sdp('The SDP answer.'), headers: location('session') } },
    },
  },
  webTransportPreflight: {
    method: 'options',
    path: '/v1/endpoints/{id}/webtransport',
    auth: 'open',
    errors: [],
    doc: { summary: 'CORS preflight of WebTransport signaling', requestParams: endpointPath, responses: { 204: none(CORS) } },
  },
  openWebTransportSession: {
    method: 'post',
    path: '/v1/endpoints/{id}/webtransport',
    auth: 'endpointToken',
    errors: ['MS_NOT_FOUND', 'MS_TOO_MANY_SESSIONS', 'MS_OVERLOADED', 'MS_GATEWAY_CLOSED'],
    doc: {
      summary: 'WebTransport signaling: a single-use session ticket',
      description: `${CORS} 404 MS_NOT_FOUND when WebTransport is disabled.`,
      requestParams: endpointPath,
      responses: { 201: json(webTransportTicketSchema, 'The ticket') },
    },
  },
  webTransportTicketPreflight: {
    method: 'options',
    path: '/v1/endpoints/{id}/webtransport/{ticket}',
    auth: 'open',
    errors: [],
    doc: { summary: 'CORS preflight of giving a WebTransport ticket back', requestParams: ticketPath, responses: { 204: none(CORS) } },
  },
  cancelWebTransportTicket: {
    method: 'delete',
    path: '/v1/endpoints/{id}/webtransport/{ticket}',
    auth: 'endpointToken',
    errors: ['MS_SESSION_NOT_FOUND'],
    doc: {
      summary: 'Give back a WebTransport ticket no session used',
      description: `${CORS} A receiver that could not reach the listener frees the ticket's signaling slot at once (it is freed at expiry otherwise). 404 MS_SESSION_NOT_FOUND: no such unused ticket for this endpoint.`,
      requestParams: ticketPath,
      responses: { 204: none('Given back') },
    },
  },
  closeWebRtcSession: {
    method: 'delete',
    path: '/v1/endpoints/{id}/webrtc/{session}',
    auth: 'endpointToken',
    errors: ['MS_SESSION_NOT_FOUND'],
    doc: { summary: 'End a WebRTC signaling session', description: CORS, requestParams: sessionPath, responses: { 204: none('Ended') } },
  },
  webTransportTunnel: {
    method: 'get',
    path: '/v1/wt',
    auth: 'open',
    errors: ['MS_BAD_REQUEST', 'MS_UNAUTHORIZED', 'MS_NOT_FOUND', 'MS_GATEWAY_CLOSED', 'MS_TRANSPORT_CLOSED'],
    doc: {
      summary: "The browsers' WebTransport fallback: a WebSocket relayed to the WebTransport listener",
      description: 'A WebSocket upgrade (GET, `Upgrade: websocket`) of the `tunnel_path` of a WebTransport ticket; the ticket admits it, once.',
      requestParams: {
        query: z.object({ ticket: z.string().meta({ description: 'From the WebTransport ticket.' }) }),
        header: z.object({ Upgrade: z.literal('websocket') }),
      },
      responses: { 101: none('Switching Protocols: the WebSocket carries the WebTransport session') },
    },
  },
  ingestStream: {
    method: 'get',
    path: '/v1/ingest',
    auth: 'apiKey',
    errors: ['MS_BAD_REQUEST', 'MS_GATEWAY_CLOSED'],
    doc: {
      summary: 'The streaming ingest: many batches for many streams on one WebSocket, each acked once stored',
      description:
        'A WebSocket upgrade (GET, `Upgrade: websocket`, the API key). Binary msgpack frames: the producer sends `[1, id, stream_id, idempotency_key | null, [[payload, key?, layer?], ...]]`; the gateway sends `[5, {instance_id, max_chunks_per_batch, max_frame_bytes, max_in_flight}]` first, then `[2, id, first_seq, last_seq]` once a batch is stored or `[3, id | null, code, message, retry_after_ms | null]` for one that was not, and `[4, reason]` (GOAWAY) when it drains. The same validation, limits, idempotency and error codes as `POST /v1/streams/{id}/chunks`; a malformed frame gets ERROR `MS_FRAME_MALFORMED` and, once the batches before it are answered, a close (1007). See docs/http-api.md.',
      requestParams: { header: z.object({ Upgrade: z.literal('websocket') }) },
      responses: { 101: none('Switching Protocols: the WebSocket carries the ingest frames') },
    },
  },
  createStream: {
    method: 'post',
    path: '/v1/streams',
    auth: 'apiKey',
    errors: ['MS_STREAM_EXISTS', 'MS_DIAL_REFUSED', 'MS_ENDPOINT_CONFLICT', ...WRITE_ERRORS],
    doc: {
      summary: 'Create a stream',
      requestBody: jsonBody(streamSpecInputSchema),
      responses: { 201: json(streamInfoSchema, 'The stream', location('stream')) },
    },
  },
  listStreams: {
    method: 'get',
    path: '/v1/streams',
    auth: 'apiKey',
    errors: [],
    doc: { summary: 'List the streams', responses: { 200: json(z.strictObject({ streams: z.array(streamInfoSchema) }), 'Every stream') } },
  },
  getStream: {
    method: 'get',
    path: '/v1/streams/{id}',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND'],
    doc: { summary: 'Read a stream', requestParams: streamPath, responses: { 200: json(streamInfoSchema, 'The stream') } },
  },
  deleteStream: {
    method: 'delete',
    path: '/v1/streams/{id}',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', ...WRITE_ERRORS],
    doc: { summary: 'Delete a stream: its endpoints get END, its retained chunks are dropped', requestParams: streamPath, responses: { 204: none('Deleted') } },
  },
  addEndpoint: {
    method: 'post',
    path: '/v1/streams/{id}/endpoints',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', 'MS_ENDPOINT_EXISTS', 'MS_DIAL_REFUSED', 'MS_ENDPOINT_CONFLICT', ...WRITE_ERRORS],
    doc: { summary: 'Add an endpoint to a stream (with url and token: one that listens, which the gateway dials)', requestParams: streamPath, requestBody: jsonBody(addEndpointSchema), responses: { 201: json(streamInfoSchema, 'The stream') } },
  },
  removeEndpoint: {
    method: 'delete',
    path: '/v1/streams/{id}/endpoints/{endpoint_id}',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', 'MS_ENDPOINT_NOT_FOUND', ...WRITE_ERRORS],
    doc: {
      summary: 'Remove an endpoint from a stream',
      requestParams: { path: z.object({ ...streamId, endpoint_id: idSchema.meta({ description: 'The endpoint id.' }) }) },
      responses: { 200: json(streamInfoSchema, 'The stream') },
    },
  },
  reorderEndpoints: {
    method: 'put',
    path: '/v1/streams/{id}/endpoints',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', 'MS_ENDPOINT_LIST_INVALID', ...WRITE_ERRORS],
    doc: {
      summary: "Reorder a stream's endpoint priorities",
      description: 'The list must hold exactly the current endpoints (422 MS_ENDPOINT_LIST_INVALID otherwise); add or remove with POST/DELETE.',
      requestParams: streamPath,
      requestBody: jsonBody(reorderSchema),
      responses: { 200: json(streamInfoSchema, 'The stream') },
    },
  },
  publishChunks: {
    method: 'post',
    path: '/v1/streams/{id}/chunks',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', 'MS_BACKPRESSURE', ...WRITE_ERRORS],
    doc: {
      summary: 'Publish a batch of chunks',
      description:
        'The batch is validated whole before any chunk is sequenced. On a backpressure stream a slow endpoint holds the publish back, then 429 MS_BACKPRESSURE (retry). ' +
        'A retry with the same Idempotency-Key stores nothing twice and answers the same seqs.',
      requestParams: {
        ...streamPath,
        query: rawQuery.meta({ description: 'With application/octet-stream only: the key and layer of its one chunk.' }),
        header: z.object({
          // the rule is checked by core/ingest.ts
          'Idempotency-Key': z
            .string()
            .regex(IDEMPOTENCY_KEY)
            .optional()
            .meta({ description: '1-128 visible ASCII characters: a retry with the same key stores nothing twice.' }),
        }),
      },
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: jsonBatch },
          ...Object.fromEntries(MSGPACK_TYPES.map((t) => [t, { schema: msgpackBatch }])),
          'application/octet-stream': { schema: z.string().meta({ description: 'The body is one chunk, as it is.' }) },
        },
      },
      responses: { 200: json(batchResultSchema, 'The seqs of the batch') },
    },
  },
  setPolicy: {
    method: 'put',
    path: '/v1/streams/{id}/policy',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND', ...WRITE_ERRORS],
    doc: { summary: "Change a stream's overflow policy while it runs", requestParams: streamPath, requestBody: jsonBody(policySchema), responses: { 200: json(streamInfoSchema, 'The stream') } },
  },
  streamHealth: {
    method: 'get',
    path: '/v1/streams/{id}/health',
    auth: 'apiKey',
    errors: ['MS_STREAM_NOT_FOUND'],
    doc: { summary: "A stream's health: its endpoints, hedges and role switches", requestParams: streamPath, responses: { 200: json(streamHealthSchema, 'Its health') } },
  },
  listEndpoints: {
    method: 'get',
    path: '/v1/endpoints',
    auth: 'apiKey',
    errors: [],
    doc: { summary: 'Every endpoint with its health', responses: { 200: json(z.strictObject({ endpoints: z.array(endpointHealthSchema) }), 'Every endpoint') } },
  },
  endpointHealth: {
    method: 'get',
    path: '/v1/endpoints/{id}/health',
    auth: 'apiKey',
    errors: ['MS_ENDPOINT_NOT_FOUND'],
    doc: { summary: "An endpoint's health: connection, heartbeats, path score, transport, streams", requestParams: endpointPath, responses: { 200: json(endpointHealthSchema, 'Its health') } },
  },
  issueToken: {
    method: 'post',
    path: '/v1/endpoints/{id}/token',
    auth: 'apiKey',
    errors: ['MS_RATE_LIMITED'],
    doc: {
      summary: 'Issue an endpoint token (for the signaling routes)',
      requestParams: endpointPath,
      requestBody: { required: false, content: { 'application/json': { schema: tokenRequestSchema } } },
      responses: { 201: json(issuedTokenSchema, 'The token') },
    },
  },
} as const satisfies Record<string, ApiRoute>;

/** Every route of the HTTP API, by operation id. */
export const ROUTES: { readonly [K in keyof typeof routes]: ApiRoute } = routes;
