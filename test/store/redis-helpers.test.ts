import { describe, expect, inject, it } from 'vitest';
import { REDIS_DB, REDIS_URL, testPrefix } from './redis-helpers.js';

// The Redis tests once wrote to database 0 of whatever server answered on 6379, under prefixes
// of their own choosing, some fixed: a developer's data sat beside them, and two runs shared keys.
describe("the tests' place in Redis", () => {
  it('is a database other than 0, unless TEST_REDIS_URL or TEST_REDIS_DB names one', () => {
    if (process.env.TEST_REDIS_URL || process.env.TEST_REDIS_DB) return;
    expect(REDIS_URL).toMatch(/^redis:\/\/127\.0\.0\.1:6379\/\d+$/);
    expect(REDIS_DB).toBeGreaterThan(0);
  });

  it("puts every test's keys under this run's own prefix, which the run's end deletes", () => {
    const run = inject('redisPrefix');
    expect(run).toMatch(/^tollgate-test:[0-9a-f-]{36}:$/);
    const [a, b] = [testPrefix(), testPrefix()];
    expect(a.startsWith(run) && b.startsWith(run)).toBe(true);
    expect(a).not.toBe(b);
  });
});
