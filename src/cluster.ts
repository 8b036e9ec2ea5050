import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { ConfigError } from './config-error.js';
import { DiskKeySet } from './keys/disk-key-set.js';
import { loadRegistryFile } from './clients/yaml-registry.js';
import { serveWorkerMetrics } from './cluster-metrics.js';
import { SqliteTokenStore } from './store/sqlite-token-store.js';

/** A worker that dies sooner than this after it started counts as failing to start. */
const EARLY_DEATH_MS = 5_000;
/** Give up after this many early deaths in a row: the cause is not going away by itself. */
const MAX_EARLY_DEATHS = 5;
const SHUTDOWN_TIMEOUT_MS = 12_000;

/**
 * The primary process of `serve --workers N`: checks what every worker will load, then forks N
 * workers that share the listening socket (node:cluster), replaces any that dies, and passes
 * SIGTERM, SIGINT and SIGHUP on. The workers run the ordinary single-process server.
 */
export async function runPrimary(config: Config, workers: number, logger: Logger): Promise<void> {
  if (config.store.kind === 'memory') {
    throw ConfigError.single(config.file, `store.kind memory keeps tokens inside one process and cannot serve ${workers} workers: use sqlite or redis, or --workers 1`, 'store.kind');
  }
  // Done here, once, so that workers never race to generate the first key, and so that a bad
  // file is reported once with exit 1 instead of as a crash loop.
  loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
  await DiskKeySet.load(config.keys.dir, { generateIfEmpty: true, algorithm: config.keys.algorithm });
  // The same for the SQLite file: created, switched to WAL and migrated before any worker opens it.
  if (config.store.kind === 'sqlite') await new SqliteTokenStore(config.store.path).close();

  let stopping = false;
  let earlyDeaths = 0;
  const startedAt = new Map<Worker, number>();
  const fork = (): void => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    earlyDeaths = lived < EARLY_DEATH_MS ? earlyDeaths + 1 : 0;
    if (earlyDeaths >= MAX_EARLY_DEATHS) {
      logger.fatal({ event: 'worker.crash_loop', pid: worker.process.pid, code, signal }, 'workers keep dying at start; giving up');
      process.exit(1);
    }
    logger.error({ event: 'worker.died', pid: worker.process.pid, code, signal }, 'worker died; starting a new one');
    fork();
  });

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'server.stopping', signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => {
      logger.error('workers still running after the grace period; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });

  serveWorkerMetrics();
  for (let i = 0; i < workers; i++) fork();
  logger.info({ event: 'primary.started', pid: process.pid, workers }, `started ${workers} workers`);
}
