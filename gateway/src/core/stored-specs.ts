import { policySchema, type StreamSpec } from '../streams/spec.js';
import type { Stream } from '../streams/stream.js';
import { toOverflow } from './build-stream.js';

/**
 * Keeping a live stream in line with its stored spec when several instances share a
 * backend: which stored revision each stream is at, and bringing a stream to a spec.
 */
export class SpecRevisions {
  readonly #at = new Map<string, number>();

  /**
   * Whether `revision` is newer than any this instance applied to the stream (and note it);
   * an older one arriving late must not take the stream back. Without revisions (the memory
   * backend) every change is new.
   */
  newer(streamId: string, revision: number | undefined): boolean {
    if (revision === undefined) return true;
    if (revision <= (this.#at.get(streamId) ?? 0)) return false;
    this.#at.set(streamId, revision);
    return true;
  }

  forget(streamId: string): void {
    this.#at.delete(streamId);
  }
}

/** What bringing a stream to a spec needs from the registry for the endpoints it adds or drops. */
export interface SpecEndpoints {
  ensure(id: string): void;
  forgetIfUnused(id: string): void;
}

/** Bring a stream's endpoints and policy to a spec (only what differs changes). */
export function applySpec(stream: Stream, spec: StreamSpec, endpoints: SpecEndpoints, now: number): void {
  const next = spec.endpoint_list;
  for (const id of stream.endpointList.filter((e) => !next.includes(e))) {
    stream.removeEndpoint(id, now);
    endpoints.forgetIfUnused(id);
  }
  for (const [i, id] of next.entries()) {
    if (stream.cursor(id)) continue;
    endpoints.ensure(id);
    stream.addEndpoint(id, i, now);
  }
  if (next.some((id, i) => stream.endpointList[i] !== id)) stream.reorder(next, now);
  const policy = toOverflow(spec.policy ?? policySchema.parse({}));
  const current = stream.overflow;
  if (policy.overflow !== current.overflow || policy.maxBacklogMs !== current.maxBacklogMs || policy.decimateN !== current.decimateN) stream.setOverflow(policy);
}
