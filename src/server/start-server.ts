import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './build-app.js';
import { readTlsFiles } from '../http/tls-files.js';
import { systemClock } from '../shared/clock.js';
import type { ReloadingClientRegistry } from '../clients/reloading-registry.js';
import type { Config } from '../config/config.js';
import { workerMetrics } from '../metrics/cluster-metrics.js';
import { createLogger } from './log.js';
import { buildServices } from './services.js';
import { demoClients, demoClientWarning, isLoopbackHost, issuerWarnings, startedLine } from './startup-report.js';
import type { TokenStore } from '../store/token-store.js';

/**
 * The size libuv gives its thread pool for this UV_THREADPOOL_SIZE: 4 when unset; otherwise the
 * number C's atoi reads from it, with 0 (or no number at all) read as 1 and anything above 1024
 * as 1024 (a negative count wraps around to above the limit).
 *
 * Kept although it repeats libuv's reading: Node offers no way to ask the pool's size, and the
 * pool's threads carry no name to count in /proc, so the started line could otherwise only echo
 * the variable (and say "0" or "many" where libuv runs 1 thread).
 */
function threadPoolInUse(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n === 0) return 1;
  return n < 0 ? 1024 : Math.min(n, 1024);
}

/** Grace period for requests in flight when the server is told to stop. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** How often records of expired tokens are deleted. */
const PURGE_INTERVAL_MS = 60_000;

export interface RunningServer {
  app: FastifyInstance;
  registry: ReloadingClientRegistry;
  store: TokenStore;
  /** Re-reads listen.tls files (SIGHUP); throws ConfigError when they cannot be read. */
  reloadTls(): void;
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  close(): Promise<void>;
}

/**
 * Loads the registry and keys the config names, builds the app and listens. Throws
 * ConfigError for a problem in a file, before anything listens.
 */
export async function startServer(config: Config, logger: Logger = createLogger(config.log.level)): Promise<RunningServer> {
  const services = await buildServices(config, { logger });
  const { registry, keys, metrics, verifier, tls } = services;
  const store = services.adapter;
  let app: FastifyInstance;
  try {
    app = buildApp({
      ...services,
      config,
      // A worker of `serve --workers N` serves the metrics of all workers.
      ...(cluster.isWorker ? { metricsText: workerMetrics(metrics.registry) } : {}),
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    // readTlsFiles has tried the TLS files already; whatever fails here is not the operator's.
    await store.close();
    throw err;
  }
  // Made now (buildApp set its parameters) so that the first request for an unknown client is
  // not slower than later ones.
  await verifier.dummy.get();
  let url: string;
  try {
    url = await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await store.close();
    throw err;
  }
  registry.watch();
  logSkippedKeys(logger, keys.skipped());
  logUntimedKeys(logger, keys.untimed());
  keys.watch((e) => {
    if (e.type === 'reloaded') {
      logger.info({ event: 'keys.reloaded', kids: e.kids, signing_kid: keys.signingKey().kid }, 'signing keys reloaded');
      logSkippedKeys(logger, e.skipped);
      logUntimedKeys(logger, e.untimed);
    } else if (e.type === 'rejected') {
      metrics.reloadsRejected.inc({ source: 'keys' });
      logger.error({ event: 'keys.rejected', problem: e.problem.message }, 'signing key change refused; the keys in use stay');
    } else if (e.type === 'unreachable') {
      logger.warn({ event: 'keys.store_unreachable', reason: e.reason }, 'cannot check the signing keys in the store; the keys in use stay');
    } else if (e.type === 'reachable') {
      logger.info({ event: 'keys.store_reachable' }, 'the signing keys in the store can be checked again');
    } else logger.info({ event: 'key.rotated', from_kid: e.from, to_kid: e.to }, 'a new key signs tokens now');
  });
  const purge = setInterval(() => {
    store.purgeExpired(systemClock.now()).then(
      (n) => n > 0 && logger.debug({ event: 'store.purged', records: n }, 'expired token records purged'),
      (err: unknown) => logger.warn({ err }, 'purging expired token records failed'),
    );
  }, PURGE_INTERVAL_MS);
  purge.unref();

  const started = startedLine(config, {
    url,
    clients: registry.all().length,
    kids: keys.jwks().keys.map((k) => k.kid),
    signingKid: keys.signingKey().kid,
    threadPool: threadPoolInUse(process.env.UV_THREADPOOL_SIZE),
  });
  logger.info(started.fields, started.message);
  for (const w of issuerWarnings(config, url)) logger.warn(w.fields, w.message);
  // Checked again on every accepted reload: the demo client may be pasted in later.
  const warnOfDemoClients = async (): Promise<void> => {
    const ids = await demoClients(registry.all());
    if (ids.length > 0) {
      const w = demoClientWarning(config.clients_file, ids);
      logger.warn(w.fields, w.message);
    }
  };
  await warnOfDemoClients();
  // A warning that fails to be made must not end the process.
  registry.onReload(() => void warnOfDemoClients().catch((err: unknown) => logger.warn({ err }, 'could not check the registry for the demo client')));
  if (tls === undefined && !isLoopbackHost(config.listen.host)) {
    logger.warn({ host: config.listen.host }, 'listening beyond loopback without TLS: put a TLS-terminating proxy in front');
  }
  return {
    app,
    url,
    registry,
    store,
    reloadTls: () => {
      const next = readTlsFiles(config);
      if (next === undefined) return;
      // New connections get the new certificate; open ones keep theirs.
      (app.server as unknown as { setSecureContext(options: object): void }).setSecureContext({
        cert: next.cert,
        key: next.key,
        ...(next.clientCa === undefined ? {} : { ca: next.clientCa }),
      });
      logger.info({ event: 'tls.reloaded' }, 'TLS certificate reloaded');
    },
    close: async () => {
      clearInterval(purge);
      registry.close();
      keys.close();
      await app.close();
      await store.close();
    },
  };
}

function logSkippedKeys(logger: Logger, skipped: readonly string[]): void {
  for (const problem of skipped) logger.warn({ event: 'keys.skipped', problem }, 'a key file was left out');
}

/** Key files whose times still come from their mtime (a read-only folder of plain PEM files). */
function logUntimedKeys(logger: Logger, untimed: readonly string[]): void {
  for (const problem of untimed) {
    logger.warn({ event: 'keys.untimed', problem }, 'a key file has no times of its own; see `tollgate keys export --to-dir` in docs/guides/signing-keys.md');
  }
}

/** Stops accepting connections on SIGTERM or SIGINT, lets requests finish, exits. */
export function closeOnSignals(server: RunningServer, logger: Logger): void {
  let closing = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    logger.info({ event: 'server.stopping', signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('requests still in flight after 10 s; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP: re-read the client registry now rather than at the next check.
  process.on('SIGHUP', () => {
    server.registry.reload();
    try {
      server.reloadTls();
    } catch (err) {
      logger.error({ event: 'tls.rejected', problem: (err as Error).message }, 'TLS files could not be read; the certificate in use stays');
    }
  });
}
