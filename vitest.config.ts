import { defineConfig } from 'vitest/config';

/**
 * Integration and e2e files that assert no time bound a loaded machine could move (real
 * sockets and processes, correctness only, every wait bounded generously): they run one at a
 * time beside the unit files instead of in the queue of the time-sensitive ones.
 */
const QUIET = [
  'test/integration/{openapi,http-api,readiness,library-noise,ice-ports,metrics,ingest-stream,signaling-auth,tunnel}.test.ts',
  'test/integration/{jetstream-publish,jetstream-log,jetstream-control,jetstream-cluster,epoch-restart}.test.ts',
  'test/integration/{webrtc-local-only,webrtc-conformance,raw-sessions,receiver-gateways,webtransport-step-aside}.test.ts',
  'test/integration/{producer,producer-ha,cli-config}.test.ts',
  'test/e2e/cli.test.ts',
];

export default defineConfig({
  resolve: {
    // tests run against the TypeScript sources, no build step needed
    alias: [
      { find: /^@mirrorstream\/receiver$/, replacement: new URL('./receiver-sdk/src/index.ts', import.meta.url).pathname },
      { find: /^@mirrorstream\/receiver\/protocol$/, replacement: new URL('./receiver-sdk/src/protocol/index.ts', import.meta.url).pathname },
      { find: /^@mirrorstream\/receiver\/node$/, replacement: new URL('./receiver-sdk/src/node.ts', import.meta.url).pathname },
      { find: /^@mirrorstream\/gateway$/, replacement: new URL('./gateway/src/index.ts', import.meta.url).pathname },
      { find: /^@mirrorstream\/producer$/, replacement: new URL('./producer/src/index.ts', import.meta.url).pathname },
    ],
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        // on the injected clock or with no time bound that load could move: two files at a time
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/fuzz/**/*.test.ts'], maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        // beside them, one at a time: real sockets and processes, no time bound asserted
        extends: true,
        test: { name: 'quiet', include: QUIET, fileParallelism: false, sequence: { groupOrder: 0 } },
      },
      {
        // then one file at a time, alone: the WebRTC, NATS and browser tests measure time-sensitive
        // things (failover interruption, switch time) that two cores shared between files would distort
        extends: true,
        test: { name: 'system', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'], exclude: QUIET, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
