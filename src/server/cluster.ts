import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ConfigError } from '../shared/config-error.js';
import { serveWorkerMetrics } from '../metrics/cluster-metrics.js';
import { prepareServices } from './services.js';

/** A worker that dies sooner than this after it started listening counts as an early death. */
const EARLY_DEATH_MS = 5_000;
/** Give up after this many early deaths in a row: the cause is not going away by itself. */
const MAX_EARLY_DEATHS = 5;
const SHUTDOWN_TIMEOUT_MS = 12_000;
/** The wait before starting a worker again after one could not start: doubling up to the maximum. */
const RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Worker → primary: the worker cannot start; `line` says why, as the command would on stderr. */
const START_FAILED = 'tollgate:start-failed';

/** In a worker that cannot start: tells the primary why (it alone reports it), then exits 1. */
export function workerCannotStart(line: string): Promise<never> {
  return new Promise(() => {
    // Exits even when the primary is gone; otherwise the channel to it would keep this process
    // alive, neither listening nor dead.
    process.send!({ type: START_FAILED, line }, undefined, {}, () => process.exit(1));
  });
}

/**
 * The primary process of `serve --workers N`: checks what every worker will load, then forks N
 * workers that share the listening socket (node:cluster), replaces any that dies, and passes
 * SIGTERM, SIGINT and SIGHUP on. The workers run the ordinary single-process server.
 *
 * A worker that exits before it listens could not start (a key or registry file broken since
 * the primary checked it, the port taken): while other workers serve, the primary logs
 * `worker.start_failed` and tries again later, so the set heals once the file is fixed; when none
 * serves, nothing would listen, so it stops with exit 1 and the worker's reason on one line.
 */
export async function runPrimary(config: Config, workers: number, logger: Logger): Promise<void> {
  if (config.store.kind === 'memory') {
    throw ConfigError.single(config.file, `store.kind memory keeps tokens inside one process and cannot serve ${workers} workers: use sqlite, redis or postgres, or --workers 1`, 'store.kind');
  }
  // Done here, once: see prepareServices.
  await prepareServices(config);

  let stopping = false;
  let earlyDeaths = 0;
  let restartDelay = RESTART_DELAY_MS;
  /** The workers listening, and since when. */
  const listeningSince = new Map<Worker, number>();
  const startFailures = new Map<Worker, string>();
  const fork = (): void => {
    if (!stopping) cluster.fork();
  };

  cluster.on('listening', (worker) => {
    if (listeningSince.has(worker)) return;
    listeningSince.set(worker, Date.now());
    restartDelay = RESTART_DELAY_MS;
  });
  cluster.on('message', (worker: Worker, message: unknown) => {
    const m = message as { type?: unknown; line?: unknown } | null;
    if (m?.type === START_FAILED && typeof m.line === 'string') startFailures.set(worker, m.line.replace(/^tollgate: /, ''));
  });

  cluster.on('exit', (worker, code, signal) => {
    const since = listeningSince.get(worker);
    listeningSince.delete(worker);
    const failure = startFailures.get(worker);
    startFailures.delete(worker);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    if (since === undefined) {
      const reason = failure ?? `a worker exited (${signal ?? `code ${code}`}) before it listened`;
      if (listeningSince.size === 0) {
        logger.fatal({ event: 'worker.start_failed', pid: worker.process.pid, reason }, 'no worker can start and none is serving; stopping');
        process.stderr.write(`tollgate: no worker can start: ${reason}\n`);
        stopping = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
        process.exit(1);
      }
      logger.error(
        { event: 'worker.start_failed', pid: worker.process.pid, reason, retry_in_s: restartDelay / 1000 },
        'a worker could not start; the others go on serving and it is tried again later',
      );
      setTimeout(fork, restartDelay).unref();
      restartDelay = Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS);
      return;
    }
    const lived = Date.now() - since;
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
