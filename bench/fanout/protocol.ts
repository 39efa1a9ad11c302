/** IPC between the fan-out bench and its two child processes (gateway, receivers). */
export type ToGateway =
  | { cmd: 'add'; ids: string[] }
  | { cmd: 'measure'; ms: number };

export type FromGateway =
  | { ev: 'listening'; url: string }
  | { ev: 'added'; tokens: { id: string; token: string }[] }
  | { ev: 'measured'; connected: number; cpuPct: number; publishedPerS: number; rssBytes: number; heapUsedBytes: number; rttSamplesMs: number[] };

export type ToReceivers = { cmd: 'connect'; url: string; endpoints: { id: string; token: string }[] } | { cmd: 'count' };

export type FromReceivers =
  | { ev: 'connected'; count: number; failed: number; seconds: number }
  | { ev: 'chunks'; count: number; cpuUs: number };
