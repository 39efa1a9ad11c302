import { ERROR_CODES, MirrorstreamError, type ErrorCode } from '@mirrorstream/receiver/protocol';

/** An endpoint_list entry: an id (the receiver dials in) or a receiver that listens at `url`. */
export type EndpointEntry = string | { endpoint_id: string; url: string; token: string };

export interface StreamSpec {
  stream_id: string;
  endpoint_list: EndpointEntry[];
  mode?: 'failover' | 'mirror';
  reliability?: 'reliable' | 'unreliable';
  mirror_k?: number;
  retention?: { max_chunks?: number; max_bytes?: number; max_age_ms?: number };
  policy?: OverflowPolicy;
  failback?: { enabled?: boolean; stable_ms?: number };
}

export interface OverflowPolicy {
  overflow?: 'backpressure' | 'drop-oldest' | 'conflate' | 'decimate' | 'layers';
  max_backlog_ms?: number;
  decimate_n?: number;
}

/** A stream as the gateway shows it (`GET /v1/streams/:id`); every field: the gateway's OpenAPI document (`/openapi.json`). */
export interface StreamInfo {
  stream_id: string;
  epoch: string;
  mode: 'failover' | 'mirror';
  endpoint_list: { endpoint_id: string; priority: number; kind: 'dial-in' | 'listening'; role: 'active' | 'standby'; state: string; last_acked_seq: number }[];
  active: string[];
  first_seq: number;
  last_seq: number;
  owner: string | null;
  [field: string]: unknown;
}

export interface IssuedToken {
  endpoint_id: string;
  token: string;
  expires_at: string;
}

/**
 * The gateway's HTTP API for administration, with the API key: the first instance that
 * answers does the call (a connection failure or a 503 moves on to the next URL); a refusal
 * is a MirrorstreamError with the gateway's code.
 */
export class AdminClient {
  readonly #urls: readonly string[];
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(urls: readonly string[], apiKey: string, timeoutMs = 10_000) {
    this.#urls = urls;
    this.#apiKey = apiKey;
    this.#timeoutMs = timeoutMs;
  }

  createStream(spec: StreamSpec): Promise<StreamInfo> {
    return this.request('POST', '/v1/streams', spec) as Promise<StreamInfo>;
  }

  getStream(streamId: string): Promise<StreamInfo> {
    return this.request('GET', `/v1/streams/${enc(streamId)}`) as Promise<StreamInfo>;
  }

  async listStreams(): Promise<StreamInfo[]> {
    return ((await this.request('GET', '/v1/streams')) as { streams: StreamInfo[] }).streams;
  }

  async deleteStream(streamId: string): Promise<void> {
    await this.request('DELETE', `/v1/streams/${enc(streamId)}`);
  }

  addEndpoint(streamId: string, endpoint: { endpoint_id: string; priority?: number; url?: string; token?: string }): Promise<StreamInfo> {
    return this.request('POST', `/v1/streams/${enc(streamId)}/endpoints`, endpoint) as Promise<StreamInfo>;
  }

  removeEndpoint(streamId: string, endpointId: string): Promise<StreamInfo> {
    return this.request('DELETE', `/v1/streams/${enc(streamId)}/endpoints/${enc(endpointId)}`) as Promise<StreamInfo>;
  }

  reorderEndpoints(streamId: string, endpointList: string[]): Promise<StreamInfo> {
    return this.request('PUT', `/v1/streams/${enc(streamId)}/endpoints`, { endpoint_list: endpointList }) as Promise<StreamInfo>;
  }

  setPolicy(streamId: string, policy: OverflowPolicy): Promise<StreamInfo> {
    return this.request('PUT', `/v1/streams/${enc(streamId)}/policy`, policy) as Promise<StreamInfo>;
  }

  streamHealth(streamId: string): Promise<Record<string, unknown>> {
    return this.request('GET', `/v1/streams/${enc(streamId)}/health`) as Promise<Record<string, unknown>>;
  }

  async listEndpoints(): Promise<Record<string, unknown>[]> {
    return ((await this.request('GET', '/v1/endpoints')) as { endpoints: Record<string, unknown>[] }).endpoints;
  }

  endpointHealth(endpointId: string): Promise<Record<string, unknown>> {
    return this.request('GET', `/v1/endpoints/${enc(endpointId)}/health`) as Promise<Record<string, unknown>>;
  }

  /** An endpoint token for a receiver that dials in. */
  issueToken(endpointId: string, options: { ttl_s?: number } = {}): Promise<IssuedToken> {
    return this.request('POST', `/v1/endpoints/${enc(endpointId)}/token`, options) as Promise<IssuedToken>;
  }

  /** Any API call: the JSON answer (undefined for 204), or the gateway's coded error. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let last: MirrorstreamError | undefined;
    for (const base of this.#urls) {
      let res: Response;
      try {
        res = await fetch(`${base.replace(/\/+$/, '')}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.#apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          redirect: 'error',
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (error) {
        last = new MirrorstreamError('MS_TRANSPORT_CLOSED', `${base}: ${error instanceof Error ? error.message : String(error)}`, { retryable: true, cause: error });
        continue;
      }
      const text = await res.text();
      if (res.status < 300) return text ? (JSON.parse(text) as unknown) : undefined;
      const error = refusal(res.status, text, base);
      // another instance may serve it: a draining or unavailable one is passed over
      if (res.status === 503) {
        last = error;
        continue;
      }
      throw error;
    }
    throw last ?? new MirrorstreamError('MS_TRANSPORT_CLOSED', 'no gateway answered', { retryable: true });
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

function refusal(status: number, body: string, base: string): MirrorstreamError {
  let code: ErrorCode = 'MS_INTERNAL';
  let message = `${base} answered ${status}`;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (typeof parsed.error?.code === 'string' && parsed.error.code in ERROR_CODES) code = parsed.error.code as ErrorCode;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not the gateway's JSON (a proxy's page)
  }
  return new MirrorstreamError(code, message, { retryable: status === 503 || status === 429 });
}
