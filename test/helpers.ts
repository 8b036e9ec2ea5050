import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll } from 'vitest';
import { buildApp, type HttpOptions } from '../src/server/build-app.js';
import { buildServices, type ServiceParts } from '../src/server/services.js';
import { Metrics } from '../src/metrics/metrics.js';
import type { Clock } from '../src/shared/clock.js';
import type { ReloadingClientRegistry } from '../src/clients/reloading-registry.js';
import type { DiskKeySet } from '../src/keys/disk-key-set.js';
import type { StoreKeySet } from '../src/keys/store-key-set.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { hashSecret } from '../src/crypto/secrets.js';
import { createLogger } from '../src/server/log.js';
import { MemoryTokenStore } from '../src/store/memory-token-store.js';
import type { TokenStore } from '../src/store/token-store.js';

const tempDirs: string[] = [];
const apps: FastifyInstance[] = [];
// Registered once per test file, at collection: a hook registered from inside another hook or a
// test would not run.
afterAll(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder removed when the test file finishes. */
export function tempDir(prefix = 'tollgate-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

const hashes = new Map<string, Promise<string>>();
/** argon2id hash of a secret, computed once per test file. */
export function hashOf(secret: string): Promise<string> {
  let h = hashes.get(secret);
  if (h === undefined) {
    h = hashSecret(secret);
    hashes.set(secret, h);
  }
  return h;
}

/** A clock the test sets. */
export class TestClock implements Clock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** Log lines captured as text, to check what reached the log. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
  events(name: string): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === name);
  }
}

export interface Fixture {
  dir: string;
  configFile: string;
  clientsFile: string;
  keysDir: string;
}

/** Writes a config and a registry (YAML text) into a fresh folder. */
export function writeFixture(options: { clients: string; config?: string }): Fixture {
  const dir = tempDir();
  const configFile = join(dir, 'tollgate.yaml');
  const clientsFile = join(dir, 'clients.yaml');
  writeFileSync(
    configFile,
    options.config ??
      `issuer: https://auth.test
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
log: { level: info }
`,
  );
  writeFileSync(clientsFile, options.clients);
  return { dir, configFile, clientsFile, keysDir: join(dir, 'keys') };
}

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  keys: DiskKeySet | StoreKeySet;
  clock: TestClock;
  logs: LogCapture;
  fixture: Fixture;
  store: TokenStore;
  /** Rewrite fixture.clientsFile and call registry.reload() to change clients. */
  registry: ReloadingClientRegistry;
}

/** A full app over a fixture, driven with app.inject(). */
export async function buildTestApp(options: {
  clients: string;
  config?: string;
  clock?: TestClock;
  store?: TokenStore;
  /** Parts to use instead of the usual ones (a jwks fetcher, a certificate source, …) and HTTP options. */
  deps?: Partial<ServiceParts> & Partial<HttpOptions>;
}): Promise<TestApp> {
  const fixture = writeFixture(options);
  const config = loadConfig(fixture.configFile);
  const logs = new LogCapture();
  const logger = createLogger('info', logs);
  const clock = options.clock ?? new TestClock();
  const store = options.store ?? new MemoryTokenStore();
  const { verifier, certificates, jwksFetcher, metrics, ...http } = options.deps ?? {};
  const services = await buildServices(config, {
    logger,
    clock,
    store,
    // Without process metrics: every test file makes many apps.
    metrics: metrics ?? new Metrics({ processMetrics: false }),
    ...(verifier === undefined ? {} : { verifier }),
    ...(certificates === undefined ? {} : { certificates }),
    ...(jwksFetcher === undefined ? {} : { jwksFetcher }),
  });
  const app = buildApp({ ...services, ...(services.tls === undefined ? {} : { tls: services.tls }), ...http, config, logger: http.logger ?? logger });
  apps.push(app);
  return { app, config, keys: services.keys, clock, logs, fixture, store, registry: services.registry };
}

/** The Basic credentials of RFC 6749 §2.3.1: each part form-urlencoded, then base64. */
export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

export function form(params: Record<string, string | string[]>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
}

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
