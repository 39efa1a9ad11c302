import { describe, expect, it } from 'vitest';
import { describeRun, NODE_KILL_SLACK_MS, runHaFault, SIGKILL_INTERRUPTION_BOUND_MS, type FaultKind, type FaultRun } from '../helpers/ha-scenario.js';

/**
 * The operator's setup (test/helpers/ha-scenario.ts): a 3-node nats-server cluster (JetStream,
 * R3), three gateway instances (the built CLI), three WebRTC receivers on the Node SDK each
 * given all three gateway URLs, one failover stream e1, e2, e3, a producer at 500 chunks/s
 * retrying a failed batch with its Idempotency-Key on the next instance. One fault per test:
 *
 * - a NATS node killed (SIGKILL) that holds one instance's ordered consumer of the stream's log,
 *   of its control stream, or its endpoint-board KV watch (the consumers are R1: they live on
 *   one node, found with `$JS.API.CONSUMER.INFO` and mapped to their instance by the NUID prefix
 *   in their names), or the log stream's leader;
 * - the instance that owns the stream, serves the producer and holds the active receiver, SIGKILLed;
 * - a receiver fault: the active receiver e1 (in a child process, on the SDK) SIGKILLed, no
 *   goodbye; its instance, the owner and the instance holding e2 are three different ones.
 *
 * Every run asserts what must hold whatever the timing: the receivers together deliver exactly
 * the acked seqs, each in increasing order, no payload at two seqs; no stale view is left once
 * the producer stopped (every live instance's log at JetStream's last seq, one live owner, the
 * same active list and connected endpoints); for the SIGKILLed owner, an interruption under a
 * regression bound of 1 s (3x its measured p99). The other time figures are speed goals: each
 * run prints its interruption against the engine's election + 1 s (node kills) or the
 * fast-failover bound (receiver kill) and when the views agreed, and
 * `npm run bench -- --only instance-loss` holds them to those bounds over 10 runs per fault (a
 * single run on nats-server 2.9, whose elections take 4-9 s, is no place for them).
 */
function check(r: FaultRun): void {
  console.log(describeRun(r));
  console.log(`  roles ${JSON.stringify(r.roles)}; killed node held: ${r.nodeHeld?.join(', ') ?? '-'}${r.preparation.length ? `; before the fault: ${r.preparation.join('; ')}` : ''}`);
  console.log(`  active over time: ${r.activeTimeline.join(' → ')}`);
  if (r.viewTimeline.length) console.log(`  view problems after the fault:\n    ${r.viewTimeline.join('\n    ')}`);
  if (r.gatewayWarnings.length) console.log(`  gateway warnings after the fault:\n    ${r.gatewayWarnings.join('\n    ')}`);
  if (r.viewTimeline.length && r.gatewayEvents.length) console.log(`  gateway warnings in time:\n    ${r.gatewayEvents.slice(0, 60).join('\n    ')}`);
  expect.soft(r.deliveryProblems, 'delivery: exactly the acked seqs, in order per receiver, no payload twice').toEqual([]);
  expect.soft(r.finalViewProblems, 'no stale view left: every live instance at JetStream\'s last seq, one live owner, the same roles and endpoint states').toEqual([]);
  if (r.fault !== 'owner-sigkill' && r.fault !== 'receiver-kill') {
    expect.soft(r.electionMs, 'the log stream answered with a new leader within 20 s').toBeDefined();
    expect.soft(r.followableMs, 'a consumer could be created on the log within 20 s').toBeDefined();
  }
  // the time figures are speed goals: printed here, held against their bounds over 10 runs per
  // fault by `npm run bench -- --only instance-loss` (an election of 4-9 s on nats-server 2.9
  // is not a figure a single run can be held to); a SIGKILLed owner gets a regression bound
  // 3x above its measured p99
  if (r.fault === 'receiver-kill') expect.soft(r.switches.length, 'a switch away from e1 recorded after the fault').toBeGreaterThan(0);
  if (r.fault === 'owner-sigkill') expect.soft(r.interruptionMs, `interruption after the fault (ms; regression bound ${SIGKILL_INTERRUPTION_BOUND_MS} ms)`).toBeLessThanOrEqual(r.interruptionBoundMs);
  else console.log(`  interruption ${r.interruptionMs} ms against ${r.interruptionBoundMs} ms (${r.fault === 'receiver-kill' ? 'fast-failover bound' : `the slowest election, ${r.interruptionBoundMs - NODE_KILL_SLACK_MS} ms, + ${NODE_KILL_SLACK_MS} ms`}); views agreed ${r.viewRecoveryMs ?? 'not'} within ${r.viewBoundMs} ms`);
}

const CASES: [FaultKind, string][] = [
  ['log-follower-node', "kill the NATS node holding the log follower of the instance that holds the active receiver (the producer's chunks reach it only through that follower)"],
  ['control-follower-node', 'kill the NATS node holding the control-stream follower of a non-owner instance that holds the active receiver'],
  ['kv-watch-node', "kill the NATS node holding the owner's endpoint-board KV watch (the other instances' endpoints, e1 among them, reach it only through that watch)"],
  ['log-leader-node', "kill the log stream's leader node"],
  ['owner-sigkill', 'SIGKILL the instance that owns the stream, serves the producer and holds the active receiver'],
  ['receiver-kill', 'SIGKILL the active receiver (its process: no goodbye, its WebRTC path goes silent), held by a non-owner while a third instance holds the next one'],
];

describe('3 gateway instances on a 3-node JetStream cluster (R3): faults', () => {
  for (const [fault, title] of CASES) {
    it(`${title}: every acked chunk delivered once, in order; no stale view left; ${fault === 'owner-sigkill' ? 'interruption under its regression bound' : 'interruption logged (held to its bound by the bench)'}`, async () => {
      check(await runHaFault(fault, { log: (line) => console.log(`  [${fault}] ${line}`) }));
    }, 90_000);
  }
});
