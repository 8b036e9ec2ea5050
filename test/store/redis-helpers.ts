import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import { deleteByPrefix } from './delete-by-prefix.js';

/**
 * The shared Redis database this run writes to (CI starts a server on 6379 when none answers):
 * chosen once per run by test/global-setup.ts, never database 0 unless TEST_REDIS_URL says so.
 */
export const REDIS_URL = inject('redisUrl');

/** REDIS_URL's database number. */
export const REDIS_DB = parseRedisUrl(REDIS_URL).db;

/**
 * A key prefix of the test's own, under this run's prefix, whose keys the run's teardown deletes
 * even when the test could not.
 */
export function testPrefix(): string {
  return `${inject('redisPrefix')}${randomUUID()}:`;
}

/** A one-off connection that never retries, for the tests' own look at Redis. */
export function plainClient(url = REDIS_URL): Redis {
  return new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
}

/** Whether a Redis answers PING at url. */
export async function redisAnswers(url = REDIS_URL): Promise<boolean> {
  const client = plainClient(url);
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Whether tests that need `what` can run. In CI a missing dependency is a failure, thrown at
 * once so the run goes red; locally the tests are skipped with a warning.
 */
export function requireOrSkip(available: boolean, what: string): boolean {
  if (available) return true;
  if (process.env.CI) throw new Error(`${what} is required in CI but is not available`);
  console.warn(`skipping: ${what} is not available (CI fails instead of skipping)`);
  return false;
}

/** Deletes every key under prefix, with SCAN rather than KEYS so a shared server is not blocked. */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const client = plainClient(url);
  await client.connect();
  try {
    await deleteByPrefix(client, prefix);
  } finally {
    client.disconnect();
  }
}

/** A TCP port nothing listens on at the moment. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * A throwaway redis-server of the test's own on `port`, persisting every write to an
 * append-only file in `dir` before it answers, so a restart on the same dir keeps the data.
 */
export async function startRedisServer(port: number, dir: string): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}/0`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url))) {
    if (proc.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return proc;
}

/** Stops a redis-server started here and waits until it has exited. */
export async function stopRedisServer(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill(signal);
  await exited;
}
