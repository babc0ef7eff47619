import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real registries on loopback ports; files run in parallel across 2 workers.
    pool: 'forks',
    maxWorkers: 2,
  },
});
