import { MirrorstreamError } from '@mirrorstream/receiver/protocol';

/** Whether the gateway is shutting down; every module that takes new work asks it. */
export type Closing = () => boolean;

/** MS_GATEWAY_CLOSED once the gateway is closing: no new streams, data, sessions or connections. */
export function assertOpen(closing: Closing): void {
  if (closing()) throw new MirrorstreamError('MS_GATEWAY_CLOSED', 'the gateway is closing', { retryable: false });
}
