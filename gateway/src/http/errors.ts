import { z } from 'zod';
import { ERROR_CODES, MirrorstreamError, type ErrorCode } from '@mirrorstream/receiver/protocol';

/** The one table from error code to HTTP status. Codes not listed are 500. */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  MS_BAD_REQUEST: 400,
  MS_FRAME_TOO_LARGE: 400,
  MS_FRAME_MALFORMED: 400,
  MS_FRAME_UNKNOWN_TYPE: 400,
  MS_FRAME_INVALID_FIELD: 400,
  MS_PROTOCOL_VERSION: 400,
  MS_PROTOCOL_STATE: 400,
  MS_HELLO_TIMEOUT: 400,
  MS_UNAUTHORIZED: 401,
  MS_NOT_FOUND: 404,
  MS_STREAM_NOT_FOUND: 404,
  MS_ENDPOINT_NOT_FOUND: 404,
  MS_SESSION_NOT_FOUND: 404,
  MS_STREAM_EXISTS: 409,
  MS_ENDPOINT_EXISTS: 409,
  MS_ENDPOINT_CONFLICT: 409,
  MS_PREVIOUS_BATCH_NOT_STORED: 409,
  MS_DIAL_REFUSED: 403,
  MS_DIAL_FAILED: 502,
  MS_PAYLOAD_TOO_LARGE: 413,
  MS_UNSUPPORTED_MEDIA_TYPE: 415,
  MS_REQUEST_TIMEOUT: 408,
  MS_HEADERS_TOO_LARGE: 431,
  MS_ENDPOINT_LIST_INVALID: 422,
  MS_BACKPRESSURE: 429,
  MS_RATE_LIMITED: 429,
  MS_TOO_MANY_SESSIONS: 429,
  MS_OVERLOADED: 503,
  MS_TRANSPORT_DEGRADED: 503,
  MS_GATEWAY_CLOSED: 503,
  MS_TRANSPORT_CLOSED: 503,
  MS_LOG_UNAVAILABLE: 503,
  MS_ICE_PORT_IN_USE: 503,
};

/** The body of every error answer, `{error:{code,message}}`, for the given codes (default: all of them). */
export function errorBodySchema(codes: readonly ErrorCode[] = Object.keys(ERROR_CODES) as ErrorCode[]) {
  return z.strictObject({
    error: z.strictObject({
      code: z.enum(codes as [ErrorCode, ...ErrorCode[]]).meta({ description: 'Stable error code (docs/errors.md).' }),
      message: z.string().meta({ description: 'For people; may change between versions.' }),
    }),
  });
}

export type ErrorBody = z.output<ReturnType<typeof errorBodySchema>>;

const httpError = (status: number, code: ErrorCode, message: string): { status: number; body: ErrorBody } => ({ status, body: { error: { code, message } } });

/**
 * Map anything thrown while serving a request to a status and `{error:{code,message}}`.
 * Besides our own errors, what Express and body-parser throw for bad input (http-errors
 * with a 4xx status: a bad percent-escape in a path, a corrupt gzip body, bad JSON) is a
 * client error too, never a 500.
 */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof MirrorstreamError) return httpError(HTTP_STATUS[err.code] ?? 500, err.code, err.message);
  const e = typeof err === 'object' && err !== null ? (err as { type?: unknown; status?: unknown; statusCode?: unknown }) : {};
  const type = typeof e.type === 'string' ? e.type : undefined;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (type === 'entity.too.large' || status === 413) return httpError(413, 'MS_PAYLOAD_TOO_LARGE', 'request body is larger than maxBodyBytes');
  if (type === 'entity.parse.failed') return httpError(400, 'MS_BAD_REQUEST', 'request body is not valid JSON');
  if (type === 'charset.unsupported' || type === 'encoding.unsupported' || status === 415) {
    return httpError(415, 'MS_UNSUPPORTED_MEDIA_TYPE', 'unsupported charset or content encoding');
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') return httpError(400, 'MS_BAD_REQUEST', 'request body was cut short');
  if (err instanceof URIError) return httpError(400, 'MS_BAD_REQUEST', 'a path parameter is not valid percent-encoding');
  if (status !== undefined && status >= 400 && status < 500) {
    // zlib errors of a corrupt compressed body come as a bare 400
    const zlib = typeof (err as { code?: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('Z_');
    return httpError(400, 'MS_BAD_REQUEST', zlib ? 'request body is not valid for its Content-Encoding' : 'bad request');
  }
  return httpError(500, 'MS_INTERNAL', 'internal error');
}
