/**
 * Versions a connection agrees on in HELLO: the wire protocol (frames.ts) and the SDK's
 * release line. The gateway and this SDK ship together, so a gateway admits receivers of
 * its own SDK major (while the major is 0, its own 0.minor: semver makes each 0.y a
 * breaking line) and answers any other with ERROR MS_PROTOCOL_VERSION.
 */
export const PROTOCOL_VERSION = 2;

/** This SDK's version (semver), sent in HELLO. */
export const SDK_VERSION = '0.2.2';

/**
 * The first SDK that reads HEARTBEAT's cadence (frames.ts). Within a release line the wire
 * only grows by fields a peer has said it reads: a gateway sends the cadence to this SDK and
 * later ones, never to an older one (its decoder rejects a 4-element HEARTBEAT).
 */
export const HEARTBEAT_CADENCE_SINCE = '0.2.1';

/** The first SDK that reads HEARTBEAT's report interval (frames.ts); older ones reject a 5-element HEARTBEAT. */
export const REPORT_CADENCE_SINCE = '0.2.2';

/** The compatible release line of a semver string ("2" for 2.3.1, "0.2" for 0.2.5), or undefined when it is not semver. */
export function releaseLine(version: string): string | undefined {
  const m = /^(\d{1,9})\.(\d{1,9})\.\d{1,9}(?:[-+][0-9A-Za-z.+-]*)?$/.exec(version);
  if (!m) return undefined;
  return m[1] === '0' ? `0.${Number(m[2])}` : String(Number(m[1]));
}

/** Whether semver `version` is `min` or later (major.minor.patch compared; a pre-release counts as its release). */
export function versionAtLeast(version: string, min: string): boolean {
  const parts = (v: string): number[] | undefined => /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+]|$)/.exec(v)?.slice(1).map(Number);
  const [a, b] = [parts(version), parts(min)];
  if (!a || !b) return false;
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** Whether a receiver announcing `sdkVersion` speaks what this build speaks. */
export function isSupportedSdk(sdkVersion: string): boolean {
  return releaseLine(sdkVersion) === releaseLine(SDK_VERSION);
}
