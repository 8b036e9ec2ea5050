import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { loadRegistryFile } from '../clients/yaml-registry.js';
import { runPrimary, workerCannotStart } from '../server/cluster.js';
import { readCas } from '../http/client-certificate.js';
import { readTlsFiles } from '../http/tls-files.js';
import { ConfigError } from '../shared/config-error.js';
import { loadConfig, type Config } from '../config/config.js';
import { hashSecret, MAX_SECRET_LENGTH } from '../crypto/secrets.js';
import { DiskKeySet } from '../keys/disk-key-set.js';
import { readKeks } from '../keys/key-encryption.js';
import { createLogger } from '../server/log.js';
import { checkTokenStore } from '../store/check-token-store.js';
import { closeOnSignals, startServer, type RunningServer } from '../server/start-server.js';
import { describeFailure } from './failure.js';
import type { Io } from './io.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

const COMMON = `  --config FILE   config file (default: $TOLLGATE_CONFIG, else config/tollgate.yaml)
  -h, --help      this text`;

export const SERVE_HELP = `Usage: tollgate serve [--config FILE] [--workers N|auto]

Runs the authorization server: loads the config, the client registry and the signing keys
(generating one into keys.dir on first start), then listens on listen.host:listen.port.
SIGTERM or SIGINT stops it after requests in flight finish; SIGHUP re-reads the registry.

  --workers N     run N processes sharing the port (auto: one per core; default 1). A worker
                  that dies is replaced; one that cannot start is tried again while another
                  serves, and when none can, serve exits 1. Needs the sqlite, redis or postgres
                  store.
${COMMON}`;

export const HASH_SECRET_HELP = `Usage: tollgate hash-secret < secret.txt

Reads a secret on stdin (one trailing newline is dropped) and prints its argon2id hash, for
secrets[].hash in the client registry.

  -h, --help      this text`;

export const CONFIG_HELP = `Usage: tollgate config check [--config FILE]

Validates the config, the client registry it names and the key directory, and tries the token
store (opens an existing SQLite file read-only, pings Redis, reads PostgreSQL's schema version)
without changing anything. Exit 0
when sound; exit 1 with every problem listed (file:line: path: reason), one per line on stderr.

${COMMON}`;

export async function serveCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { workers: { type: 'string' } });
  if (values.help) return print(io, SERVE_HELP);
  positionals(pos, [], 'tollgate serve [--config FILE] [--workers N|auto]');
  const workers = parseWorkers(values.workers ?? '1');
  if (cluster.isWorker) {
    // A worker of `serve --workers N`: why it cannot start goes to the primary, which says it
    // once for all workers and decides whether to try again (see cluster.ts).
    try {
      return await serve(values.config, io, 1);
    } catch (err) {
      return workerCannotStart(describeFailure(err, io.env).lines[0]!);
    }
  }
  return serve(values.config, io, workers);
}

async function serve(configOption: string | undefined, io: Io, workers: number): Promise<number> {
  const config = loadConfig(configPath(configOption, io.env), { env: io.env, cwd: io.cwd });
  const logger = createLogger(config.log.level);
  if (workers > 1 && cluster.isPrimary) {
    await runPrimary(config, workers, logger);
    return new Promise<number>(() => {});
  }
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UsageError(`cannot listen on ${config.listen.host}:${config.listen.port} (${code})`);
    }
    throw err;
  }
  closeOnSignals(server, logger);
  // The process now lives as long as the server; closeOnSignals decides the exit code.
  return new Promise<number>(() => {});
}

function parseWorkers(text: string): number {
  if (text === 'auto') return availableParallelism();
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > 256) {
    throw new UsageError('--workers must be a number from 1 to 256, or auto (one per core)');
  }
  return Number(text);
}

export async function hashSecretCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, {});
  if (values.help) return print(io, HASH_SECRET_HELP);
  positionals(pos, [], 'tollgate hash-secret < secret.txt');
  const secret = (await io.readStdin()).replace(/\r?\n$/, '');
  if (secret === '') throw new UsageError('no secret on stdin');
  if (secret.length > MAX_SECRET_LENGTH) throw new UsageError(`the secret is longer than ${MAX_SECRET_LENGTH} characters`);
  if (secret.length < 32) io.err('warning: a secret shorter than 32 characters is weak; `tollgate client add` makes 256-bit ones');
  io.out(await hashSecret(secret));
  return 0;
}

export async function configCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') return print(io, CONFIG_HELP);
  if (sub !== 'check') throw new UsageError(sub === undefined ? 'missing command (see tollgate config --help)' : `unknown command "config ${sub}"`);
  const { values, positionals: pos } = parseCommand(rest, {});
  if (values.help) return print(io, CONFIG_HELP);
  positionals(pos, [], 'tollgate config check [--config FILE]');

  const file = configPath(values.config, io.env);
  const problems: string[] = [];
  const collect = (err: unknown): void => {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.message.split('\n'));
  };
  let summary = '';
  try {
    const config = loadConfig(file, { env: io.env, cwd: io.cwd });
    try {
      const registry = loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
      const n = registry.all().length;
      const issuers = registry.trustedIssuers().length;
      const trusted = issuers === 0 ? '' : ` and ${issuers} trusted issuer${issuers === 1 ? '' : 's'}`;
      summary += `${n} client${n === 1 ? '' : 's'}${trusted} in ${config.clients_file}; `;
    } catch (err) {
      collect(err);
    }
    try {
      readTlsFiles(config);
      // Behind a proxy there is a client CA without a certificate of tollgate's own.
      if (config.listen.tls?.client_ca !== undefined) readCas(config.listen.tls.client_ca);
    } catch (err) {
      collect(err);
    }
    try {
      if (config.keys.source === 'store') {
        // The keys themselves are opened by serve and the keys commands, which read the store.
        const keks = readKeks(config.keys.encryption_key_file!, config.keys.previous_encryption_key_file);
        summary += `signing keys in the store, key-encryption key ${keks.map((k) => `${k.id} from ${k.file}`).join(' and ')}`;
      } else {
        summary += await diskKeysSummary(config, io);
      }
    } catch (err) {
      // An empty key directory is fine: serve generates the first key.
      if (!(err instanceof ConfigError && /holds no keys/.test(err.message))) collect(err);
      else summary += `no signing key yet in ${config.keys.dir} (serve generates one)`;
    }
    try {
      summary += `; ${await checkTokenStore(config.store, config.file)}`;
    } catch (err) {
      collect(err);
    }
  } catch (err) {
    collect(err);
  }
  if (problems.length > 0) {
    for (const p of problems) io.err(p);
    return 1;
  }
  io.out(`ok: ${file}: ${summary}`);
  return 0;
}

async function diskKeysSummary(config: Config, io: Io): Promise<string> {
  const keySet = await DiskKeySet.load(config.keys.dir, { generateIfEmpty: false });
  for (const line of keySet.skipped()) io.err(`warning: ${line}`);
  const keys = keySet.list();
  return `${keys.length} signing key${keys.length === 1 ? '' : 's'} in ${config.keys.dir}`;
}

function print(io: Io, text: string): number {
  io.out(text);
  return 0;
}
