import { pack, unpack } from 'msgpackr';
import { WebSocket } from 'ws';
import { ERROR_CODES, INGEST_PATH, IngestFrame, MirrorstreamError, type ErrorCode, type IngestChunk, type IngestWelcome } from '@mirrorstream/receiver/protocol';

/** What the gateway answered about one batch. */
export type BatchAnswer = { ok: true; firstSeq: number; lastSeq: number } | { ok: false; error: MirrorstreamError; retryAfterMs: number | null };

export interface LinkEvents {
  answer(link: IngestLink, id: number, answer: BatchAnswer): void;
  /** The gateway drains: send nothing new here (what is in flight is still answered). */
  goaway(link: IngestLink, reason: string): void;
  /** The connection is gone; `error` says why. */
  closed(link: IngestLink, error: MirrorstreamError): void;
}

/**
 * One streaming-ingest connection to one gateway instance (a WebSocket of msgpack frames):
 * opened once the gateway's WELCOME arrived, batches out, answers and GOAWAY in. What a frame
 * means for the batches is the Producer's.
 */
export class IngestLink {
  readonly url: string;
  readonly welcome: IngestWelcome;
  readonly #ws: WebSocket;
  #closed = false;
  #draining = false;
  #reported = false;

  private constructor(url: string, ws: WebSocket, welcome: IngestWelcome, events: LinkEvents) {
    this.url = url;
    this.#ws = ws;
    this.welcome = welcome;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#frame(data, isBinary, events));
    ws.on('close', (code, reason) => this.#gone(events, new MirrorstreamError('MS_TRANSPORT_CLOSED', `ingest connection to ${url} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, { retryable: true })));
    ws.on('error', (error) => this.#gone(events, new MirrorstreamError('MS_TRANSPORT_CLOSED', `ingest connection to ${url}: ${error.message}`, { retryable: true, cause: error })));
  }

  /** Connect to `gatewayUrl`'s streaming ingest; resolves on WELCOME, rejects with a coded error (MS_UNAUTHORIZED: the API key). */
  static open(gatewayUrl: string, apiKey: string, timeoutMs: number, events: LinkEvents): Promise<IngestLink> {
    const url = `${gatewayUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}${INGEST_PATH}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` }, handshakeTimeout: timeoutMs, perMessageDeflate: false, maxPayload: 1024 * 1024 });
      const timer = setTimeout(() => fail(new MirrorstreamError('MS_TRANSPORT_CLOSED', `no WELCOME from ${gatewayUrl} within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
      const fail = (error: MirrorstreamError): void => {
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(error);
      };
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d.slice(0, 2_000)));
        res.on('end', () => fail(refusal(res.statusCode ?? 0, body, gatewayUrl)));
        res.on('error', () => fail(refusal(res.statusCode ?? 0, '', gatewayUrl)));
      });
      ws.once('error', (error) => fail(new MirrorstreamError('MS_TRANSPORT_CLOSED', `${gatewayUrl}: ${error.message}`, { retryable: true, cause: error })));
      ws.once('message', (data: Buffer) => {
        const frame = decode(data);
        if (!frame || frame[0] !== IngestFrame.WELCOME || typeof frame[1] !== 'object' || frame[1] === null) {
          return fail(new MirrorstreamError('MS_FRAME_MALFORMED', `${gatewayUrl} did not start with WELCOME`));
        }
        clearTimeout(timer);
        ws.removeAllListeners();
        resolve(new IngestLink(gatewayUrl, ws, frame[1] as IngestWelcome, events));
      });
    });
  }

  get usable(): boolean {
    return !this.#closed && !this.#draining;
  }

  /** A batch; `after`: the batch sent before it here that must be stored first (a gateway that takes it: welcome.batch_after). */
  send(id: number, streamId: string, key: string, chunks: readonly IngestChunk[], after: number | null): boolean {
    if (!this.usable) return false;
    this.#ws.send(pack(after === null ? [IngestFrame.BATCH, id, streamId, key, chunks] : [IngestFrame.BATCH, id, streamId, key, chunks, after]));
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#ws.close(1000);
  }

  #frame(data: Buffer, isBinary: boolean, events: LinkEvents): void {
    const f = isBinary ? decode(data) : undefined;
    if (f?.[0] === IngestFrame.ACK && typeof f[1] === 'number' && typeof f[2] === 'number' && typeof f[3] === 'number') {
      return events.answer(this, f[1], { ok: true, firstSeq: f[2], lastSeq: f[3] });
    }
    if (f?.[0] === IngestFrame.ERROR && typeof f[2] === 'string') {
      const retryAfterMs = typeof f[4] === 'number' && f[4] >= 0 ? f[4] : null;
      const error = new MirrorstreamError(knownCode(f[2]), `gateway ${this.url}: ${typeof f[3] === 'string' ? f[3] : f[2]}`, { retryable: retryAfterMs !== null });
      if (typeof f[1] === 'number') return events.answer(this, f[1], { ok: false, error, retryAfterMs });
      // the gateway could not read one of our frames: a bug on one side; this connection ends
      return this.#gone(events, error);
    }
    if (f?.[0] === IngestFrame.GOAWAY) {
      this.#draining = true;
      return events.goaway(this, typeof f[1] === 'string' ? f[1] : 'gateway going away');
    }
    this.#gone(events, new MirrorstreamError('MS_FRAME_MALFORMED', `${this.url} sent a frame that is not an ingest answer`));
  }

  /** The connection ends (told once, also after our own close(): what was in flight here is sent again elsewhere). */
  #gone(events: LinkEvents, error: MirrorstreamError): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#closed = true;
    this.#ws.removeAllListeners();
    this.#ws.on('error', () => undefined);
    if (this.#ws.readyState !== WebSocket.CLOSED) this.#ws.terminate();
    events.closed(this, error);
  }
}

function decode(data: Buffer): unknown[] | undefined {
  try {
    const v = unpack(data) as unknown;
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function knownCode(code: string): ErrorCode {
  return code in ERROR_CODES ? (code as ErrorCode) : 'MS_INTERNAL';
}

/** The gateway refused the upgrade: its `{error}` and status as a coded error. */
function refusal(status: number, body: string, gatewayUrl: string): MirrorstreamError {
  let code: ErrorCode = status === 401 ? 'MS_UNAUTHORIZED' : status === 503 ? 'MS_GATEWAY_CLOSED' : 'MS_TRANSPORT_CLOSED';
  let message = `${gatewayUrl} refused the ingest connection (${status})`;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (typeof parsed.error?.code === 'string') code = knownCode(parsed.error.code);
    if (typeof parsed.error?.message === 'string') message += `: ${parsed.error.message.slice(0, 300)}`;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return new MirrorstreamError(code, message, { retryable: code !== 'MS_UNAUTHORIZED' });
}
