import { ERROR_CODES, MirrorstreamError, type ErrorCode } from '../protocol/errors.js';

/** A signaling answer that is not the expected one, as a coded error (401 is not retryable). */
export async function httpError(res: Response): Promise<MirrorstreamError> {
  let code: ErrorCode = res.status === 401 ? 'MS_UNAUTHORIZED' : 'MS_TRANSPORT_CLOSED';
  let message = `signaling answered ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code && Object.prototype.hasOwnProperty.call(ERROR_CODES, body.error.code)) code = body.error.code as ErrorCode;
    if (body.error?.message) message = `signaling: ${body.error.message}`;
  } catch {
    // not our JSON error body
  }
  const retryAfterMs = retryAfter(res.headers.get('retry-after'));
  return new MirrorstreamError(code, message, { retryable: res.status !== 401, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
}

/** Retry-After in seconds (an HTTP date is not used by the gateway): ms, capped at an hour. */
function retryAfter(header: string | null): number | undefined {
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return undefined;
  return Math.min(Number(header.trim()), 3_600) * 1000;
}

/** A dial step that took too long: retryable MS_TRANSPORT_CLOSED. */
export function dialTimeout(what: string, ms: number): () => MirrorstreamError {
  return () => new MirrorstreamError('MS_TRANSPORT_CLOSED', `${what}: no result after ${ms} ms`, { retryable: true });
}
