import { STATUS_CODES, type Server, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { MirrorstreamError, type ErrorCode } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { LimitsConfig } from '../config.js';

/**
 * What keeps bad or abusive clients from hurting the gateway before a route runs:
 * per-address rate limits, a JSON depth limit, HTTP timeouts, and JSON answers to what
 * Node's HTTP parser refuses.
 */

/** At most `max` requests per client address per `windowMs` (0: no limit); beyond, 429 MS_RATE_LIMITED with Retry-After. */
export function perAddressLimit(max: number, windowMs: number, what: string): RequestHandler {
  if (max === 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs,
    limit: max,
    // Retry-After (seconds to the window's end) and RateLimit headers
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // the key is req.ip: the client's address, or from X-Forwarded-For when config.trustProxy names the proxy
    validate: false,
    handler: (_req, _res, next) => next(new MirrorstreamError('MS_RATE_LIMITED', `more than ${max} ${what} requests from this address in ${windowMs} ms`, { retryable: true })),
  });
}

/** Refuse a parsed JSON body nested deeper than `maxDepth` (walking it later could overflow the stack). */
export function jsonDepthLimit(maxDepth: number): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (deeperThan(req.body, maxDepth)) next(new MirrorstreamError('MS_BAD_REQUEST', `JSON body nested deeper than ${maxDepth} levels (limits.maxJsonDepth)`));
    else next();
  };
}

/** Iterative, so a deep value cannot overflow the stack here either. */
export function deeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as object)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** Timeouts against slow clients (checked every second, not Node's default 30 s). */
export function serverOptions(limits: LimitsConfig): ServerOptions {
  return { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: 1_000 };
}

/** A JSON error body for requests the HTTP parser refuses (a head too large, a timeout, bad framing). */
export function answerParserErrors(server: Server, log: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    log.debug({ code: err.code }, 'HTTP request refused by the parser');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(parserErrorResponse(err.code));
  });
}

/** The raw HTTP/1.1 answer to a parser error (there is no response object to use). */
export function parserErrorResponse(nodeCode: string | undefined): string {
  const [status, code, message]: [number, ErrorCode, string] =
    nodeCode === 'HPE_HEADER_OVERFLOW'
      ? [431, 'MS_HEADERS_TOO_LARGE', 'request head larger than 16 KiB']
      : nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'MS_REQUEST_TIMEOUT', 'request did not arrive in time']
        : [400, 'MS_BAD_REQUEST', `malformed HTTP request${nodeCode ? ` (${nodeCode})` : ''}`];
  return rawErrorResponse(status, { error: { code, message } });
}

/** A whole HTTP/1.1 error answer, written straight to a socket (no response object: parser errors, refused upgrades). */
export function rawErrorResponse(status: number, errorBody: { error: { code: ErrorCode; message: string } }): string {
  const body = JSON.stringify(errorBody);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
