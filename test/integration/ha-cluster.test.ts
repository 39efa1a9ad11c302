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
 * Every run: the receivers together deliver exactly the acked seqs, each in increasing order, no
 * payload at two seqs; every live instance's view (its log's last seq against JetStream's, the
 * owner, the active list, which endpoints are connected) agrees with the others within
 * VIEW_BOUND_MS (+ the longest election the kill caused, measured from outside) of the fault and
 * stays so; the delivery interruption (the longest time with no new seq delivered from the fault
 * until the producer stops) is at most, for a node kill, the engine's election (the log has a
 * leader and a consumer can be created on it, which needs the JetStream meta leader, and a control
 * stream or bucket the node led has a leader: all measured from outside) + 1 s; for the SIGKILL,
 * 1 s (a regression bound; the
 * target, 500 ms p99, is measured by `npm run bench -- --only instance-loss`); for the receiver
 * kill, no bound is asserted: the interruption and the switch's own `interruption_ms` are logged
 * (their figures against the fast-failover bound, RECEIVER_FAULT_BOUND_MS, come from the bench).
 */
function check(r: FaultRun): void {
  console.log(describeRun(r));
  console.log(`  roles ${JSON.stringify(r.roles)}; killed node held: ${r.nodeHeld?.join(', ') ?? '-'}${r.preparation.length ? `; before the fault: ${r.preparation.join('; ')}` : ''}`);
  console.log(`  active over time: ${r.activeTimeline.join(' → ')}`);
  if (r.viewTimeline.length) console.log(`  view problems after the fault:\n    ${r.viewTimeline.join('\n    ')}`);
  if (r.gatewayWarnings.length) console.log(`  gateway warnings after the fault:\n    ${r.gatewayWarnings.join('\n    ')}`);
  if (r.viewTimeline.length && r.gatewayEvents.length) console.log(`  gateway warnings in time:\n    ${r.gatewayEvents.slice(0, 60).join('\n    ')}`);
  expect.soft(r.deliveryProblems, 'delivery: exactly the acked seqs, in order per receiver, no payload twice').toEqual([]);
  expect.soft(r.viewRecoveryMs, `every live instance's view agreed within ${r.viewBoundMs} ms of the fault`).toBeDefined();
  expect.soft(r.viewRecoveryMs ?? Infinity, 'view recovery (ms after the fault)').toBeLessThanOrEqual(r.viewBoundMs);
  expect.soft(r.finalViewProblems, 'views once the producer stopped').toEqual([]);
  if (r.fault !== 'owner-sigkill' && r.fault !== 'receiver-kill') {
    expect.soft(r.electionMs, 'the log stream answered with a new leader within 20 s').toBeDefined();
    expect.soft(r.followableMs, 'a consumer could be created on the log within 20 s').toBeDefined();
  }
  if (r.fault === 'receiver-kill') {
    // the figures only (see above; ≤ 100 ms in 11 runs on an idle machine, 187 ms once with one
    // core busy elsewhere: no margin for an assertion in a loaded suite): a switch away from e1 was recorded
    expect.soft(r.switches.length, 'a switch away from e1 recorded after the fault').toBeGreaterThan(0);
    return;
  }
  const bound =
    r.fault === 'owner-sigkill'
      ? `regression bound ${SIGKILL_INTERRUPTION_BOUND_MS} ms`
      : `log leader after ${r.electionMs} ms, followable after ${r.followableMs} ms, slowest election ${r.interruptionBoundMs - NODE_KILL_SLACK_MS} ms, + ${NODE_KILL_SLACK_MS} ms`;
  expect.soft(r.interruptionMs, `interruption after the fault (ms; ${bound})`).toBeLessThanOrEqual(r.interruptionBoundMs);
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
    it(`${title}: every acked chunk delivered once, in order; views agree again; ${fault === 'receiver-kill' ? 'interruption logged' : 'bounded interruption'}`, async () => {
      check(await runHaFault(fault, { log: (line) => console.log(`  [${fault}] ${line}`) }));
    }, 90_000);
  }
});
