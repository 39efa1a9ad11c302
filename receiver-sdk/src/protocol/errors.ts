/**
 * The one registry of mirrorstream error codes, shared by the gateway and the SDK.
 * Codes are stable: never rename or reuse one. `docs/errors.md` lists them and a test
 * keeps the two in sync.
 */
export const ERROR_CODES = {
  // wire protocol
  MS_FRAME_TOO_LARGE: 'frame exceeds the maximum frame size',
  MS_FRAME_MALFORMED: 'frame is not valid msgpack or not a frame array',
  MS_FRAME_UNKNOWN_TYPE: 'frame type is unknown',
  MS_FRAME_INVALID_FIELD: 'a frame field has the wrong type or value',
  MS_PROTOCOL_VERSION: 'peer speaks an unsupported protocol version',
  MS_PROTOCOL_STATE: 'frame not allowed in the current session state',
  MS_HELLO_TIMEOUT: 'no valid HELLO within the handshake deadline',
  // requests and resources
  MS_BAD_REQUEST: 'request body, query or parameters are invalid',
  MS_UNAUTHORIZED: 'missing or invalid API key or endpoint token',
  MS_NOT_FOUND: 'no such route',
  MS_STREAM_NOT_FOUND: 'no such stream',
  MS_STREAM_EXISTS: 'a stream with this id already exists',
  MS_ENDPOINT_NOT_FOUND: 'no such endpoint',
  MS_ENDPOINT_EXISTS: 'endpoint is already listed on this stream',
  MS_SESSION_NOT_FOUND: 'no such signaling session',
  MS_ENDPOINT_LIST_INVALID: 'endpoint list has duplicates or does not match the current set',
  MS_ENDPOINT_CONFLICT: 'a listening endpoint is already defined with another url or token',
  MS_PREVIOUS_BATCH_NOT_STORED: 'the ingest batch this one follows was not stored, so neither was this one: send both again, in order',
  MS_DIAL_REFUSED: 'the url of a listening endpoint names a host the gateway may not dial (dialOut.allow)',
  MS_DIAL_FAILED: 'dialing a listening endpoint failed; the gateway retries with backoff',
  MS_PAYLOAD_TOO_LARGE: 'request body or chunk is larger than allowed',
  MS_UNSUPPORTED_MEDIA_TYPE: 'content type is not accepted here',
  MS_REQUEST_TIMEOUT: 'the request did not arrive in time',
  MS_HEADERS_TOO_LARGE: 'the request head is larger than allowed',
  MS_BACKPRESSURE: 'the stream is backpressured by a slow endpoint; retry later',
  MS_RATE_LIMITED: 'too many requests from this address; retry after Retry-After',
  MS_TOO_MANY_SESSIONS: 'the endpoint (or the gateway) has as many signaling sessions as allowed; retry later',
  MS_OVERLOADED: 'the gateway is past its capacity and admits no new endpoint now; try another instance or retry after Retry-After',
  MS_TRANSPORT_DEGRADED: 'this transport is degraded: reconnect over the next one',
  MS_GATEWAY_CLOSED: 'the gateway is closing or closed',
  MS_TRANSPORT_CLOSED: 'the transport is closed',
  MS_CONFIG_INVALID: 'configuration is invalid',
  MS_ICE_PORT_IN_USE: 'a configured WebRTC ICE port is taken by another socket',
  MS_INTERNAL: 'internal error',
  // receiver SDK
  MS_LISTENER_ERROR: 'an application event listener threw (the SDK went on)',
  MS_TRANSPORT_UNAVAILABLE: 'this transport cannot be used here: its library is not installed',
  MS_VIDEO_FRAME_INVALID: 'a chunk is not a video frame chunk this SDK can read',
  // durable log
  MS_LOG_UNAVAILABLE: 'the stream log (NATS JetStream) is unavailable; nothing was acknowledged: retry',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Error with a stable `code`; `retryable` says whether the same call may succeed later. */
export class MirrorstreamError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** How long the other side asked to wait before the same call (an HTTP Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryable?: boolean; retryAfterMs?: number }) {
    super(message ?? ERROR_CODES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MirrorstreamError';
    this.code = code;
    this.retryable = options?.retryable ?? false;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** Error found in a wire frame; the peer answers it with an ERROR frame and closes. */
export class ProtocolError extends MirrorstreamError {
  constructor(code: ErrorCode, message?: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
