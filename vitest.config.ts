import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (file: string): string => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

export default defineConfig({
  // The package's public paths, as examples/ import them (tsconfig.json maps the same for tsc and tsx).
  resolve: {
    alias: [
      { find: /^failover-watch$/, replacement: src('index.ts') },
      { find: /^failover-watch\/redis$/, replacement: src('redis.ts') },
      { find: /^failover-watch\/postgres$/, replacement: src('postgres.ts') },
      { find: /^failover-watch\/etcd$/, replacement: src('etcd.ts') },
      { find: /^failover-watch\/metrics$/, replacement: src('metrics.ts') },
      { find: /^failover-watch\/testing$/, replacement: src('testing/index.ts') },
      { find: /^failover-watch\/transport$/, replacement: src('transport.ts') },
    ],
  },
  test: {
    // A JavaScript build of src/ for the CLI processes the tests spawn (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    // examples/*.test.ts are the users' side of the test kit (docs/TESTING.md): run with the suite.
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Integration tests spawn real processes and sockets; a 2-core machine needs headroom.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
