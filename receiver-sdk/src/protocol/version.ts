/**
 * Versions a connection agrees on in HELLO: the wire protocol (frames.ts) and the SDK's
 * release line. The gateway and this SDK ship together, so a gateway admits receivers of
 * its own SDK major (while the major is 0, its own 0.minor: semver makes each 0.y a
 * breaking line) and answers any other with ERROR MS_PROTOCOL_VERSION.
 */
export const PROTOCOL_VERSION = 2;

/** This SDK's version (semver), sent in HELLO. */
export const SDK_VERSION = '0.2.0';

/** The compatible release line of a semver string ("2" for 2.3.1, "0.2" for 0.2.5), or undefined when it is not semver. */
export function releaseLine(version: string): string | undefined {
  const m = /^(\d{1,9})\.(\d{1,9})\.\d{1,9}(?:[-+][0-9A-Za-z.+-]*)?$/.exec(version);
  if (!m) return undefined;
  return m[1] === '0' ? `0.${Number(m[2])}` : String(Number(m[1]));
}

/** Whether a receiver announcing `sdkVersion` speaks what this build speaks. */
export function isSupportedSdk(sdkVersion: string): boolean {
  return releaseLine(sdkVersion) === releaseLine(SDK_VERSION);
}
