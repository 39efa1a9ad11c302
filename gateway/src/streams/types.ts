import type { Channel } from '@mirrorstream/receiver/protocol';
import type { EndpointState } from '../health/failure-detector.js';
import type { HealthSnapshot, MetricState } from '../health/score.js';

export type StreamMode = 'failover' | 'mirror';
export type Role = 'active' | 'standby';

/**
 * Why a role changed; stable strings (they appear in the API, events and metrics). The one
 * list: the API schema, the engine records and the metrics take it from here.
 */
export const SWITCH_REASONS = [
  'initial',
  'heartbeat-timeout',
  'disconnected',
  'degraded',
  'removed',
  'failback',
  'operator',
  'recovered',
  /** A standby hedging for a silent active endpoint keeps the stream once that one is confirmed gone (detail: why). */
  'hedge-commit',
] as const;
export type SwitchReason = (typeof SWITCH_REASONS)[number];

/** Where a stream writes frames for one endpoint: its open connection. */
export interface StreamLink {
  readonly bufferedAmount: number;
  readonly highWaterBytes?: number;
  send(bytes: Uint8Array, channel: Channel): boolean;
}

/** What the stream needs to know about an endpoint; the gateway's endpoint registry provides it. */
export interface EndpointView {
  readonly state: EndpointState;
  /** Path health verdict from probes and transport telemetry. */
  readonly degraded: boolean;
  /** When the last connection closed (while disconnected). */
  readonly disconnectedAt: number | undefined;
  /** Loss the receiver reported for this stream between its last two reports. */
  receiverLoss(streamId: string): number | undefined;
  /** The stream-level verdict another instance measured (an endpoint connected there). */
  streamDegraded?(streamId: string): boolean;
  health(): HealthSnapshot;
  /** Alive and healthy since (fail-back waits for this to be old enough). */
  readonly upSince: number | undefined;
  /** The open connection, if any. */
  readonly link: StreamLink | undefined;
}

export interface SwitchRecord {
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: SwitchReason;
  readonly at: number;
  /** First seq the new endpoint was sent. */
  readonly from_seq: number;
  /** For degradation: which metrics were breached. */
  readonly detail?: string[];
  /** The health metrics of the endpoint that lost its role, at the moment of the switch. */
  readonly metrics?: Record<string, MetricState>;
  /**
   * Measured delivery interruption (ms): the old endpoint's last ack (or, if later, the
   * ingestion of `from_seq`: a quiet producer is no interruption) → the new endpoint's first
   * ack of `from_seq` or later. Set once that ack arrives; absent for a first start.
   */
  interruption_ms?: number;
}

export interface RoleChange {
  streamId: string;
  endpointId: string;
  role: Role;
  fromSeq: number;
  reason: SwitchReason;
  at: number;
}

export interface GapDeclared {
  streamId: string;
  endpointId: string;
  from: number;
  to: number;
  reason: string;
}

/**
 * One run of the failover policy, as applied to the cursors: who gains and who loses the
 * active role (with the switch records), and the active set after it. With several
 * gateway instances the owner of the stream makes it and every instance applies it.
 */
export interface RoleDecision {
  readonly active: readonly string[];
  readonly promoted: readonly { readonly id: string; readonly fromSeq: number; readonly reason: SwitchReason; readonly record: SwitchRecord }[];
  readonly demoted: readonly { readonly id: string; readonly reason: SwitchReason; readonly record?: SwitchRecord }[];
  /** Standbys receiving beside a suspect active endpoint after this decision, from `fromSeq` (absent: none). */
  readonly hedges?: readonly Hedge[];
}

/** A standby (`by`) that also receives the stream while the active endpoint `for` is suspect. */
export interface Hedge {
  readonly for: string;
  readonly by: string;
  /** First seq the standby was sent. */
  readonly fromSeq: number;
}

/** A hedge began, ended (the active endpoint answered, or the hedge was no longer needed) or was committed (the standby took over). */
export interface HedgeEvent extends Hedge {
  streamId: string;
  kind: 'started' | 'ended' | 'committed';
  at: number;
}

/**
 * Who decides a stream's roles when several gateway instances serve it: the holder of the
 * stream's lease. It stores its decisions in a fenced log; every instance applies them.
 */
export interface StreamControl {
  /** This instance holds the stream's lease now. */
  isOwner(): boolean;
  /** The instance holding the lease (undefined: it expired, a takeover is due). */
  readonly owner: string | undefined;
  /** Store a decision; rejects when this instance does not hold the lease (any more). */
  publish(decision: RoleDecision): Promise<void>;
  /** Every stored decision, in order (ours too). */
  onDecision(listener: (decision: RoleDecision) => void): void;
  /** This instance took the lease or lost it (the stream decides again). */
  onOwnerChange?(listener: () => void): void;
  close(): Promise<void>;
}

/** What a stream tells the outside (Stream emits these). */
export type StreamEvents = {
  roleChanged: [RoleChange];
  switched: [{ streamId: string } & SwitchRecord];
  gap: [GapDeclared];
  hedged: [HedgeEvent];
  /** The active set may have changed (an index of active endpoints is stale). */
  activeChanged: [];
  /** An endpoint was added to or removed from the list (an index of members is stale). */
  listChanged: [];
  /** The stream sent, or its roles changed: assess it every tick until it is `settled` again. */
  assessing: [];
  /** Run the policy again at `at` (undefined: no time-driven change pending) unless something changes first. */
  evaluateAt: [at: number | undefined];
  /** An endpoint's cumulative ack moved forward (a durable backend keeps it). */
  acked: [endpointId: string, seq: number];
};
