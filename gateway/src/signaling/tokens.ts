import { errors, jwtVerify, SignJWT } from 'jose';
import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import { idSchema, parseInput } from '../streams/spec.js';

const AUDIENCE = 'mirrorstream:endpoint';

export interface IssuedToken {
  endpoint_id: string;
  token: string;
  expires_at: string;
}

/**
 * Endpoint tokens: HS256 JWTs whose subject is the one endpoint they admit. Signaling
 * checks them before any SDP reaches a WebRTC engine. Time comes from the gateway clock.
 */
export class EndpointTokens {
  readonly #key: Uint8Array;
  readonly #defaultTtlS: number;
  readonly #clock: Clock;

  constructor(secret: string, defaultTtlS: number, clock: Clock) {
    this.#key = new TextEncoder().encode(secret);
    this.#defaultTtlS = defaultTtlS;
    this.#clock = clock;
  }

  /** A token for `endpointId`, valid `ttlS` seconds (1 s .. 30 days; default from the config). */
  issue(endpointId: string, ttlS?: number): Promise<IssuedToken> {
    parseInput(idSchema, endpointId, 'endpoint id');
    if (ttlS !== undefined && (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > 30 * 24 * 3600)) {
      throw new MirrorstreamError('MS_BAD_REQUEST', 'ttl_s must be an integer between 1 and 2592000');
    }
    return this.#sign(endpointId, ttlS ?? this.#defaultTtlS);
  }

  async #sign(endpointId: string, ttlS: number): Promise<IssuedToken> {
    const now = Math.floor(this.#clock.now() / 1000);
    const exp = now + ttlS;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(endpointId)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.#key);
    return { endpoint_id: endpointId, token, expires_at: new Date(exp * 1000).toISOString() };
  }

  /** Throws MS_UNAUTHORIZED unless `token` is valid, unexpired and issued for `endpointId`. */
  async verify(token: string | undefined, endpointId: string): Promise<void> {
    if (!token) throw new MirrorstreamError('MS_UNAUTHORIZED', 'endpoint token required (Authorization: Bearer <token>)');
    let subject: string | undefined;
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        audience: AUDIENCE,
        currentDate: new Date(this.#clock.now()),
      });
      subject = payload.sub;
    } catch (error) {
      const why = error instanceof errors.JWTExpired ? 'endpoint token expired' : 'endpoint token invalid';
      throw new MirrorstreamError('MS_UNAUTHORIZED', why, { cause: error });
    }
    if (subject !== endpointId) {
      throw new MirrorstreamError('MS_UNAUTHORIZED', 'endpoint token was issued for another endpoint');
    }
  }
}
