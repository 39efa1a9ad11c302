import { MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * An engine failure as the gateway reports it: MS_LOG_UNAVAILABLE, retryable. NATS down or
 * reconnecting, a request timeout, no responders while JetStream elects a leader ("503"),
 * a closed connection: none of them says the data is gone, and nothing was acknowledged.
 */
export function logUnavailable(what: string, cause: unknown): MirrorstreamError {
  if (cause instanceof MirrorstreamError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new MirrorstreamError('MS_LOG_UNAVAILABLE', `${what}: the stream log (NATS JetStream) is unavailable: ${detail.slice(0, 200)}`, {
    cause,
    retryable: true,
  });
}

/** JetStream's API error code, when it answered with one (10071: wrong last sequence, 10059: stream not found). */
export function apiErrorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const WRONG_LAST_SEQUENCE = 10071;
export const STREAM_NOT_FOUND = 10059;
