import { MirrorstreamError, type ErrorCode } from '@mirrorstream/receiver/protocol';

/** The one table from error code to HTTP status. Codes not listed are 500. */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  MS_BAD_REQUEST: 400,
  MS_FRAME_TOO_LARGE: 400,
  MS_FRAME_MALFORMED: 400,
  MS_FRAME_UNKNOWN_TYPE: 400,
  MS_FRAME_INVALID_FIELD: 400,
  MS_PROTOCOL_VERSION: 400,
  MS_PROTOCOL_STATE: 400,
  MS_UNAUTHORIZED: 401,
  MS_NOT_FOUND: 404,
  MS_STREAM_NOT_FOUND: 404,
  MS_ENDPOINT_NOT_FOUND: 404,
  MS_SESSION_NOT_FOUND: 404,
  MS_STREAM_EXISTS: 409,
  MS_ENDPOINT_EXISTS: 409,
  MS_PAYLOAD_TOO_LARGE: 413,
  MS_UNSUPPORTED_MEDIA_TYPE: 415,
  MS_ENDPOINT_LIST_INVALID: 422,
  MS_BACKPRESSURE: 429,
  MS_TRANSPORT_DEGRADED: 503,
  MS_GATEWAY_CLOSED: 503,
  MS_TRANSPORT_CLOSED: 503,
  MS_LOG_UNAVAILABLE: 503,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Map anything thrown while serving a request to a status and `{error:{code,message}}`. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof MirrorstreamError) {
    return { status: HTTP_STATUS[err.code] ?? 500, body: { error: { code: err.code, message: err.message } } };
  }
  // body-parser errors carry a `type`
  const type = typeof err === 'object' && err !== null && 'type' in err ? String(err.type) : undefined;
  if (type === 'entity.too.large') {
    return { status: 413, body: { error: { code: 'MS_PAYLOAD_TOO_LARGE', message: 'request body is larger than maxBodyBytes' } } };
  }
  if (type === 'entity.parse.failed') {
    return { status: 400, body: { error: { code: 'MS_BAD_REQUEST', message: 'request body is not valid JSON' } } };
  }
  if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
    return { status: 415, body: { error: { code: 'MS_UNSUPPORTED_MEDIA_TYPE', message: 'unsupported charset or content encoding' } } };
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') {
    return { status: 400, body: { error: { code: 'MS_BAD_REQUEST', message: 'request body was cut short' } } };
  }
  return { status: 500, body: { error: { code: 'MS_INTERNAL', message: 'internal error' } } };
}
