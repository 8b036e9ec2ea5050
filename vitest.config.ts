import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ for the CLI tests, picks this run's Redis database and key prefix.
    globalSetup: ['test/global-setup.ts'],
    // argon2 verifies and child processes make some tests slower than vitest's 5 s default.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
