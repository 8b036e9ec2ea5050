import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { systemClock } from './clock.js';
import { loadRegistryFile } from './clients/yaml-registry.js';
import type { Config } from './config.js';
import { getDummyHash } from './crypto/secrets.js';
import { DiskKeySet } from './keys/disk-key-set.js';
import { createLogger } from './log.js';

/** Grace period for requests in flight when the server is told to stop. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

export interface RunningServer {
  app: FastifyInstance;
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  close(): Promise<void>;
}

/**
 * Loads the registry and keys the config names, builds the app and listens. Throws
 * ConfigError for a problem in a file, before anything listens.
 */
export async function startServer(config: Config, logger: Logger = createLogger(config.log.level)): Promise<RunningServer> {
  const registry = loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
  const keys = await DiskKeySet.load(config.keys.dir, { generateIfEmpty: true });
  // Computed now so that the first request for an unknown client is not slower than later ones.
  await getDummyHash();

  const app = buildApp({ config, registry, keys, clock: systemClock, logger });
  const url = await app.listen({ host: config.listen.host, port: config.listen.port });
  logger.info(
    { event: 'server.started', url, issuer: config.issuer, clients: registry.all().length, signing_kid: keys.signingKey().kid },
    'tollgate listening',
  );
  if (!isLoopback(config.listen.host)) {
    logger.warn({ host: config.listen.host }, 'listening beyond loopback without TLS: put a TLS-terminating proxy in front');
  }
  return { app, url, close: () => app.close() };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
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
}
