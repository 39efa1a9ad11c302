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
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // one file at a time: the WebRTC tests measure time-sensitive things (failover
    // interruption, switch time) that two cores shared between test files would distort
    fileParallelism: false,
    hookTimeout: 30_000,
  },
});
