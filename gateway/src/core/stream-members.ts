import type { Stream } from '../streams/stream.js';

/**
 * Which streams list each endpoint: asked on every probe and on most frames, so it is an
 * index, rebuilt on the next question after a list changed (lists change rarely).
 */
export class StreamMembers {
  readonly #streams: () => Iterable<Stream>;
  #index: Map<string, Stream[]> | undefined;

  constructor(streams: () => Iterable<Stream>) {
    this.#streams = streams;
  }

  of(endpointId: string): readonly Stream[] {
    if (!this.#index) {
      const index = (this.#index = new Map<string, Stream[]>());
      for (const s of this.#streams()) {
        for (const id of s.endpointList) {
          const list = index.get(id);
          if (list) list.push(s);
          else index.set(id, [s]);
        }
      }
    }
    return this.#index.get(endpointId) ?? [];
  }

  /** A stream was added or dropped, or an endpoint joined or left a list. */
  invalidate(): void {
    this.#index = undefined;
  }
}
