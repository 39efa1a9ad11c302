/**
 * Versions a connection agrees on in HELLO: the wire protocol (frames.ts) and the SDK's
 * major. The gateway and this SDK ship together, so a gateway admits receivers of its own
 * SDK major and answers any other with ERROR MS_PROTOCOL_VERSION.
 */
export const PROTOCOL_VERSION = 2;

/** This SDK's version (semver), sent in HELLO. */
export const SDK_VERSION = '0.2.0';

/** The major of a semver string, or undefined when it is not one. */
export function semverMajor(version: string): number | undefined {
  const m = /^(\d{1,9})\.\d{1,9}\.\d{1,9}(?:[-+][0-9A-Za-z.+-]*)?$/.exec(version);
  return m ? Number(m[1]) : undefined;
}

/** Whether a receiver announcing `sdkVersion` speaks what this build speaks. */
export function isSupportedSdk(sdkVersion: string): boolean {
  return semverMajor(sdkVersion) === semverMajor(SDK_VERSION);
}
