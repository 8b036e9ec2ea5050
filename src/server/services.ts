import type { Logger } from 'pino';
import { IssuerKeys } from '../clients/issuer-keys.js';
import { JwksFetcher } from '../clients/jwks-fetcher.js';
import type { ClientRegistry } from '../clients/registry.js';
import { ReloadingClientRegistry } from '../clients/reloading-registry.js';
import { loadRegistryFile } from '../clients/yaml-registry.js';
import type { Config } from '../config/config.js';
import { SecretVerifier } from '../crypto/secret-verifier.js';
import { certificateSource, type CertificateSource } from '../http/client-certificate.js';
import { readTlsFiles, type TlsFiles } from '../http/tls-files.js';
import { DiskKeySet } from '../keys/disk-key-set.js';
import { readKeks } from '../keys/key-encryption.js';
import type { KeySet } from '../keys/key-set.js';
import { StoreKeySet } from '../keys/store-key-set.js';
import { InstrumentedTokenStore, Metrics } from '../metrics/metrics.js';
import type { ClientAssertionDeps } from '../oauth/client-assertion.js';
import type { FederatedAssertionDeps } from '../oauth/federated-assertion.js';
import type { GrantPolicy } from '../oauth/client-credentials.js';
import type { DpopDeps } from '../oauth/dpop.js';
import { DpopNonces } from '../oauth/dpop-nonce.js';
import { TOKEN_PATH } from '../oauth/metadata.js';
import { FailureThrottle } from '../oauth/throttle.js';
import { TokenIssuer } from '../oauth/token-issuer.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { ConfigError } from '../shared/config-error.js';
import { createTokenStore, describeStore } from '../store/create-token-store.js';
import { PostgresTokenStore } from '../store/postgres-token-store.js';
import { SqliteTokenStore } from '../store/sqlite-token-store.js';
import type { TokenStore } from '../store/token-store.js';

// The one place where the parts of a server are made from a config: `serve` (each worker
// included) and the tests' buildTestApp go through buildServices; the primary of
// `serve --workers N` prepares the same files once with prepareServices.

/** What of the config the services read. */
export type ServicesConfig = Pick<Config, 'issuer' | 'tokens' | 'throttle' | 'client_auth' | 'dpop'>;

/** The parts that hold state or do I/O, from which wireServices makes the rest. */
export interface ServiceParts {
  config: ServicesConfig;
  /** The clients; a registry that reloads (onReload) keeps the dummy hash in step with it. */
  registry: ClientRegistry & { onReload?(listener: () => void): void };
  keys: KeySet;
  clock: Clock;
  /** The store as the adapter made it; the services count its operations in `metrics`. */
  store: TokenStore;
  logger: Logger;
  /** Checks client secrets; one is made (observed by `metrics`) if omitted. */
  verifier?: SecretVerifier;
  /** Prometheus metrics; a registry without process metrics if omitted. */
  metrics?: Metrics;
  /** Where client certificates come from; none when omitted. */
  certificates?: CertificateSource;
  /** Fetches clients' jwks_uri; one is made if omitted. */
  jwksFetcher?: JwksFetcher;
}

/** Everything the endpoints need, made once per server. */
export interface Services {
  readonly config: ServicesConfig;
  readonly registry: ClientRegistry & { onReload?(listener: () => void): void };
  readonly keys: KeySet;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The store, counted in `metrics`. */
  readonly store: TokenStore;
  readonly metrics: Metrics;
  readonly verifier: SecretVerifier;
  readonly throttle: FailureThrottle;
  readonly certificates: CertificateSource;
  /** What private_key_jwt needs. */
  readonly assertions: Omit<ClientAssertionDeps, 'clock'>;
  /** What federated_jwt and spiffe_jwt need: the trusted issuers' keys, fetched by the same fetcher. */
  readonly federation: Omit<FederatedAssertionDeps, 'clock'>;
  readonly issuer: TokenIssuer;
  readonly policy: GrantPolicy;
  /** What DPoP proofs at the token endpoint are checked against. */
  readonly dpop: DpopDeps;
}

/** Whether `deps` are made services rather than the parts to make them from. */
export function isServices(deps: Services | ServiceParts): deps is Services {
  return 'throttle' in deps && deps.throttle instanceof FailureThrottle;
}

/** Makes the services from their parts. No I/O but the dummy hash, which is made in the background. */
export function wireServices(parts: ServiceParts): Services {
  const { config, registry, clock, keys, logger } = parts;
  const metrics = parts.metrics ?? new Metrics({ processMetrics: false });
  const store = new InstrumentedTokenStore(parts.store, metrics);
  const verifier = parts.verifier ?? new SecretVerifier({ observe: (s) => metrics.argon2Seconds.observe(s), queueFull: () => metrics.argon2QueueFull.inc() });
  // An unknown client_id costs what the costliest registered hash costs, after every reload too.
  const followRegistry = (): void => {
    verifier.dummy.follow(registry.all()).then(
      () => {
        if (verifier.dummy.fellBack) {
          logger.warn({ event: 'dummy_hash.fallback' }, "argon2 refused the registry's costliest hash parameters for the unknown-client check; unknown client_ids answer faster than that client");
        }
      },
      (err: unknown) => logger.error({ event: 'dummy_hash.failed', err }, 'the hash for unknown client_ids could not be made; it is tried again on the next one'),
    );
  };
  followRegistry();
  registry.onReload?.(followRegistry);
  const throttle = new FailureThrottle(
    store,
    { windowMs: config.throttle.window * 1000, clientFailures: config.throttle.client_failures, addressFailures: config.throttle.address_failures },
    clock,
  );
  const certificates = parts.certificates ?? (() => undefined);
  const audiences = {
    issuer: config.issuer,
    ...(config.client_auth.accept_token_endpoint_audience ? { tokenEndpointAudience: `${config.issuer}${TOKEN_PATH}` } : {}),
  };
  const fetcher = parts.jwksFetcher ?? new JwksFetcher();
  const assertions = { ...audiences, fetcher, replay: store };
  const federation = { ...audiences, keys: new IssuerKeys(fetcher, { now: () => clock.now() }) };
  metrics.watch(registry, keys);
  return {
    config,
    registry,
    keys,
    clock,
    logger,
    store,
    metrics,
    verifier,
    throttle,
    certificates,
    assertions,
    federation,
    issuer: new TokenIssuer(config.issuer, keys, clock),
    policy: { defaultAudience: config.tokens.audience, defaultTtl: config.tokens.ttl },
    // htu is the token endpoint as the metadata publishes it: the URL clients use, whatever
    // proxies sit between them and this process.
    dpop: {
      tokenEndpoint: `${config.issuer}${TOKEN_PATH}`,
      replay: store,
      clock,
      nonces: config.dpop.require_nonce ? new DpopNonces(keys, clock) : undefined,
    },
  };
}

export interface BuildServicesOptions {
  logger: Logger;
  clock?: Clock;
  /** The token store; the one `store` in the config names if omitted. */
  store?: TokenStore;
  /** Prometheus metrics; a registry with process metrics if omitted. */
  metrics?: Metrics;
  verifier?: SecretVerifier;
  certificates?: CertificateSource;
  jwksFetcher?: JwksFetcher;
}

/** The services of a server, with the parts that a running server watches and closes. */
export interface BuiltServices extends Services {
  readonly registry: ReloadingClientRegistry;
  /** The keys of keys.dir, or of the store (keys.source store). */
  readonly keys: DiskKeySet | StoreKeySet;
  /** The store as its adapter made it, uncounted: the server purges and closes it. */
  readonly adapter: TokenStore;
  /** The listen.tls files; undefined when TLS is not served. */
  readonly tls: TlsFiles | undefined;
}

/**
 * Loads the registry and keys the config names, opens its token store and makes the services.
 * Throws ConfigError for a problem in a file. Nothing is watched yet: the caller starts the
 * registry's and keys' watchers once it serves.
 */
export async function buildServices(config: Config, options: BuildServicesOptions): Promise<BuiltServices> {
  const { logger } = options;
  const registry = loadRegistry(config, logger);
  // The key-encryption keys are read before the store is opened: a missing file is told at once.
  const diskKeys = config.keys.source === 'dir' ? await loadKeys(config) : undefined;
  const keks = config.keys.source === 'store' ? storeKeks(config) : undefined;
  const store = options.store ?? createTokenStore(config.store, logger);
  // A PostgreSQL database holding a newer tollgate's schema is refused at start; one that is
  // down is not: the store keeps trying, answering 503 meanwhile.
  if (store instanceof PostgresTokenStore) await refuseUnusableSchema(store, config);
  const keys = diskKeys ?? (await openStoreKeys(config, store, keks!, options.clock));

  const metrics = options.metrics ?? new Metrics();
  const verifier = options.verifier ?? new SecretVerifier({ observe: (s) => metrics.argon2Seconds.observe(s), queueFull: () => metrics.argon2QueueFull.inc() });
  // Verified credentials are re-checked against the live hashes anyway; clearing them on a
  // registry change also drops entries of clients that are gone.
  registry.onReload(() => verifier.cache.clear());
  registry.onReject(() => metrics.reloadsRejected.inc({ source: 'registry' }));
  const tls = readTlsFiles(config);
  const certificates =
    options.certificates ??
    certificateSource({
      clientCaFile: config.listen.tls?.client_ca,
      header: config.listen.client_cert_header,
      trustedProxies: config.trust_proxy,
    });
  const services = wireServices({
    config,
    registry,
    keys,
    clock: options.clock ?? systemClock,
    store,
    logger,
    verifier,
    metrics,
    certificates,
    ...(options.jwksFetcher === undefined ? {} : { jwksFetcher: options.jwksFetcher }),
  });
  return { ...services, registry, keys, adapter: store, tls };
}

/**
 * What every worker of `serve --workers N` will load, done once by the primary: a bad registry
 * or key file is reported once with exit 1 instead of as a crash loop, workers never race to
 * generate the first key, and the SQLite file is created, switched to WAL and migrated before
 * any worker opens it.
 */
export async function prepareServices(config: Config): Promise<void> {
  loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
  if (config.keys.source === 'dir') {
    await DiskKeySet.load(config.keys.dir, {
      generateIfEmpty: true,
      algorithm: config.keys.algorithm,
      publishBeforeUseMs: config.keys.publish_before_use * 1000,
      addTimes: true,
    });
  }
  if (config.store.kind === 'sqlite') await new SqliteTokenStore(config.store.path).close();
  if (config.keys.source === 'store') {
    // The first key made and every stored key opened once, by the primary: a wrong
    // key-encryption key is one line and exit 1, not a crash loop of workers.
    const keks = storeKeks(config);
    const store = createTokenStore(config.store);
    try {
      (await openStoreKeys(config, store, keks)).close();
    } finally {
      await store.close();
    }
  }
  if (config.store.kind === 'postgres') {
    // Tables made once by the primary rather than raced for by every worker (safe either way).
    const store = createTokenStore(config.store) as PostgresTokenStore;
    try {
      await refuseUnusableSchema(store, config);
    } finally {
      await store.close();
    }
  }
}

async function refuseUnusableSchema(store: PostgresTokenStore, config: Config): Promise<void> {
  try {
    await store.untilOpened();
  } catch (err) {
    await store.close();
    throw ConfigError.single(config.file, (err as Error).message, 'store.url');
  }
}

function loadRegistry(config: Config, logger: Logger): ReloadingClientRegistry {
  return new ReloadingClientRegistry(config.clients_file, { defaultAudience: config.tokens.audience, allowEmpty: config.allow_empty_registry }, logger);
}

function storeKeks(config: Config): ReturnType<typeof readKeks> {
  // The config loader requires encryption_key_file with keys.source store.
  return readKeks(config.keys.encryption_key_file!, config.keys.previous_encryption_key_file);
}

/**
 * The keys of keys.source store, the first one made if the store holds none. A store that does
 * not answer at start is refused in one line: there would be nothing to sign with.
 */
async function openStoreKeys(config: Config, store: TokenStore, keks: ReturnType<typeof readKeks>, clock?: Clock): Promise<StoreKeySet> {
  const storeName = describeStore(config.store);
  try {
    return await StoreKeySet.open(store, {
      keks,
      generateIfEmpty: true,
      algorithm: config.keys.algorithm,
      publishBeforeUseMs: config.keys.publish_before_use * 1000,
      storeName,
      ...(clock === undefined ? {} : { clock }),
    });
  } catch (err) {
    await store.close();
    if (err instanceof ConfigError) throw err;
    throw ConfigError.single(storeName, `cannot read the signing keys (keys.source store): ${(err as Error).message}`);
  }
}

function loadKeys(config: Config): Promise<DiskKeySet> {
  return DiskKeySet.load(config.keys.dir, {
    generateIfEmpty: true,
    algorithm: config.keys.algorithm,
    publishBeforeUseMs: config.keys.publish_before_use * 1000,
    addTimes: true,
  });
}
