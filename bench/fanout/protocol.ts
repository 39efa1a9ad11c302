/** IPC between the fan-out bench and its child processes (one gateway, several receiver processes). */
export type FanoutTransport = 'webrtc' | 'webtransport';

export type ToGateway =
  /** Diagnostics of undialed stages: `streams` 'none' issues tokens only, 'empty' creates the streams with no endpoint; `stallMs` blocks the gateway's event loop that long first. */
  | { cmd: 'add'; ids: string[]; streams?: 'none' | 'empty'; stallMs?: number }
  /** Tokens for endpoints that exist already (FANOUT_ENDPOINTS). */
  | { cmd: 'tokens'; ids: string[] }
  /** Measure for `ms`; `idle`: publish nothing meanwhile (what an idle warm endpoint costs). */
  | { cmd: 'measure'; ms: number; idle?: boolean };

export type FromGateway =
  | { ev: 'listening'; url: string }
  | { ev: 'added'; tokens: { id: string; token: string }[] }
  | { ev: 'tokens'; tokens: { id: string; token: string }[] }
  /** FANOUT_TICK_MS: endpoints connected now, admission refusals since start, loop delay p99 since the last tick. */
  | { ev: 'tick'; atMs: number; connected: number; refused: number; loopDelayP99Ms: number }
  | { ev: 'measured'; connected: number; cpuPct: number; publishedPerS: number; published: number; rssBytes: number; heapUsedBytes: number; rttSamplesMs: number[]; threadsPct: Record<string, number>; loopDelayP99Ms: number; loopDelayMaxMs: number; stealPct: number };

export type ToReceivers = { cmd: 'connect'; url: string; transport: FanoutTransport; endpoints: { id: string; token: string }[]; deadlineMs: number } | { cmd: 'count' } | { cmd: 'close' };

export type FromReceivers =
  /** `refused`: not connected, the gateway's last answer MS_OVERLOADED (past its admission budget; they keep trying); `failed`: not connected for another reason, or never dialed by the deadline. */
  | { ev: 'connected'; count: number; failed: number; refused: number; seconds: number }
  /** Every receiver of the process closed (the pool is reused for the next gateway). */
  | { ev: 'closed' }
  /** Chunks received so far; gaps: a seq skipped on some receiver; duplicates: a seq seen twice; loopDelayP99Ms: this process's event-loop delay since the last count (part of every heartbeat RTT its receivers answer). */
  | { ev: 'chunks'; count: number; gaps: number; duplicates: number; cpuUs: number; loopDelayP99Ms: number };
