import type { PresenceBus } from '../../gateway/src/storage/jetstream/presence.js';

/** Core NATS between instances in one process: every publish reaches every subscriber of a matching `prefix.presence.*`. */
export class FakeBus implements PresenceBus {
  readonly #subs = new Set<{ prefix: string; onMessage: (subject: string) => void }>();
  /** Drops every publish while true (a partition). */
  cut = false;

  publish(subject: string): void {
    if (this.cut) return;
    for (const s of this.#subs) if (subject.startsWith(s.prefix)) s.onMessage(subject);
  }

  subscribe(subject: string, onMessage: (subject: string) => void): { unsubscribe(): void } {
    const sub = { prefix: subject.slice(0, -1), onMessage };
    this.#subs.add(sub);
    return { unsubscribe: () => this.#subs.delete(sub) };
  }
}
