import type { RoleDecision, StreamControl } from './types.js';

/** What a stream lends its decision port: where a decision takes effect, and a way to decide again. */
export interface DecisionTarget {
  /** Apply a decision to the stream's cursors (on every instance that serves it). */
  apply(decision: RoleDecision): void;
  /** Run the policy again now (what changed meanwhile, or a decision that was not stored). */
  decideAgain(): void;
}

/**
 * How a stream's role decisions take effect. The stream decides when `canDecide` says so and
 * hands the decision over; it never learns whether one instance or several serve it.
 */
export interface DecisionPort {
  /** This instance may decide now (and no decision of its own is still on its way). */
  readonly canDecide: boolean;
  submit(decision: RoleDecision): void;
}

export type Decisions = (target: DecisionTarget) => DecisionPort;

/** One instance serves the stream: a decision applies at once. */
export const localDecisions: Decisions = (target) => ({
  canDecide: true,
  submit: (decision) => target.apply(decision),
});

/**
 * Several instances serve the stream: only the holder of its lease decides, one decision at a
 * time; a decision applies once the control stored it, on every instance, ours too. What
 * changed while it was being stored is decided right after; one that was not stored (lease
 * lost, engine away) is decided again with what is true by then.
 */
export function controlledDecisions(control: StreamControl): Decisions {
  return (target) => {
    let pending = false;
    control.onDecision((decision) => {
      pending = false;
      target.apply(decision);
      target.decideAgain();
    });
    return {
      get canDecide() {
        return !pending && control.isOwner();
      },
      submit(decision) {
        pending = true;
        control.publish(decision).catch(() => {
          pending = false;
          target.decideAgain();
        });
      },
    };
  };
}
