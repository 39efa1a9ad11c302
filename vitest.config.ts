import { defineConfig } from 'vitest/config';

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
        // then one file at a time: the WebRTC, NATS and browser tests measure time-sensitive
        // things (failover interruption, switch time) that two cores shared between files would distort
        extends: true,
        test: { name: 'system', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
