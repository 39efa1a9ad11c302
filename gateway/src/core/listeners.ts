import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import type { StoredStream } from '../storage/backend.js';
import type { Listeners } from '../streams/spec.js';

/**
 * One endpoint id is one receiver: a listening endpoint has one url and token across every
 * stream. MS_ENDPOINT_CONFLICT when `listeners` (for stream `streamId`) names an id another
 * stream already defines differently.
 */
export function assertNoListenerConflict(records: ReadonlyMap<string, StoredStream>, listeners: Listeners, streamId: string): void {
  for (const [id, target] of Object.entries(listeners)) {
    for (const [otherId, record] of records) {
      const other = otherId === streamId ? undefined : record.spec.listeners?.[id];
      if (other && (other.url !== target.url || other.token !== target.token)) {
        throw new MirrorstreamError('MS_ENDPOINT_CONFLICT', `${id} listens at another url or with another token on stream ${otherId}: one endpoint id is one receiver`);
      }
    }
  }
}
