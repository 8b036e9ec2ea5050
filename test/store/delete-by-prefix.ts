import type { Redis } from 'ioredis';

/**
 * Deletes every key under `prefix` with SCAN and UNLINK: never KEYS, which blocks a shared server,
 * nor FLUSHDB, which would take keys this run does not own. Used by the tests' own cleanup and by
 * the run's teardown (test/global-setup.ts), which cannot import the vitest-bound helpers.
 */
export async function deleteByPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}
