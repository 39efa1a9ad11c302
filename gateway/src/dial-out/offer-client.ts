import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';

/** Where and how to dial one listening endpoint. */
export interface ListenerTarget {
  url: string;
  token: string;
}

export interface OfferClientOptions {
  /** The whole exchange (connect, TLS, answer) within this. */
  timeoutMs: number;
  /** The allow list's lookup (refuses addresses outside dialOut.allow). */
  lookup: LookupFunction;
  /** PEM CAs to trust instead of the system's. */
  ca?: string | undefined;
  /** Accepted certificate fingerprints (SHA-256, `AA:BB:…`); non-empty: the pin is the check. */
  pins: readonly string[];
}

const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * WHIP-style: POST the gateway's SDP offer to the listener's URL with its token; a 201 with an
 * SDP answer (and the session's Location, same origin only) is the one success. Redirects are
 * not followed, and every other outcome is MS_DIAL_FAILED (retryable) saying what came back.
 */
export async function postOffer(target: ListenerTarget, offerSdp: string, o: OfferClientOptions): Promise<{ answerSdp: string; sessionUrl: string | undefined }> {
  const url = new URL(target.url);
  const res = await send(url, 'POST', target.token, o, offerSdp);
  const body = await readBody(res, MAX_ANSWER_BYTES).catch((error: unknown) => {
    throw failed(`${url.origin}: the answer broke off: ${describe(error as Error, o.timeoutMs)}`, error);
  });
  if (res.statusCode !== 201) {
    const redirect = res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400;
    throw failed(`${url.origin} answered ${res.statusCode ?? '?'}${redirect ? ' (a redirect: not followed)' : res.statusCode === 401 ? ' (the listener refused the token)' : ''}${errorText(body)}`);
  }
  if (body === undefined) throw failed(`${url.origin} answered more than ${MAX_ANSWER_BYTES} bytes`);
  const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== 'application/sdp' || !/^v=0\r?\n/.test(body) || !/\r?\nm=application /.test(body)) throw failed(`${url.origin} answered 201 without an SDP answer (${type || 'no content type'})`);
  const location = res.headers.location;
  let sessionUrl: string | undefined;
  if (location) {
    const resolved = new URL(location, url);
    if (resolved.origin === url.origin) sessionUrl = resolved.toString();
  }
  return { answerSdp: body, sessionUrl };
}

/** End the listener's session (best effort, bounded). */
export async function deleteSession(sessionUrl: string, token: string, o: OfferClientOptions): Promise<void> {
  const res = await send(new URL(sessionUrl), 'DELETE', token, o).catch(() => undefined);
  res?.resume();
}

function send(url: URL, method: 'POST' | 'DELETE', token: string, o: OfferClientOptions, body?: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/sdp', 'content-length': String(Buffer.byteLength(body)) });
    const options = {
      method,
      headers,
      // no shared agent: no TLS session resumed from another dial (a resumed session shows no
      // certificate to check a pin against), and no connection kept past its one request
      agent: false,
      lookup: o.lookup,
      signal: AbortSignal.timeout(o.timeoutMs),
      ...(https ? { ...(o.ca ? { ca: o.ca } : {}), ...(o.pins.length > 0 ? { rejectUnauthorized: false } : {}) } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(url, options, resolve);
    if (https && o.pins.length > 0) {
      req.once('socket', (socket) =>
        socket.once('secureConnect', () => {
          const fingerprint = (socket as TLSSocket).getPeerCertificate().fingerprint256;
          if (!o.pins.includes(fingerprint)) req.destroy(failed(`${url.origin}'s certificate (SHA-256 ${fingerprint}) is not one of dialOut.pinSha256`));
        }),
      );
    }
    req.once('error', (error: Error) => reject(error instanceof MirrorstreamError ? error : failed(`${url.origin}: ${describe(error, o.timeoutMs)}`, error)));
    req.end(body);
  });
}

/** A fingerprint as Node prints it: upper-case hex pairs joined by colons. */
export function normalizePin(pin: string): string {
  const hex = pin.replace(/:/g, '').toUpperCase();
  return hex.match(/.{2}/g)?.join(':') ?? hex;
}

function describe(error: Error, timeoutMs: number): string {
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code} (${error.message})` : error.message;
}

function failed(message: string, cause?: unknown): MirrorstreamError {
  return new MirrorstreamError('MS_DIAL_FAILED', message, { retryable: true, ...(cause === undefined ? {} : { cause }) });
}

/** A listener's `{error:{code,message}}`, shortened, for the dial's last error. */
function errorText(body: string | undefined): string {
  if (!body) return '';
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') return `: ${parsed.error.code.slice(0, 64)}${typeof parsed.error.message === 'string' ? ` ${parsed.error.message.slice(0, 200)}` : ''}`;
  } catch {
    // not JSON: say nothing of it
  }
  return '';
}

async function readBody(res: IncomingMessage, max: number): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of res as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > max) {
      res.destroy();
      return undefined;
    }
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}
