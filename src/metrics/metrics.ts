import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClientRegistry } from '../clients/registry.js';
import { CounterFamily, HistogramFamily, type CounterChild, type HistogramChild } from './metric-families.js';
import type { KeySet } from '../keys/key-set.js';
import type { ClaimOptions, Counter as FailureCounter, CounterLimit, Reservation, ReservedHit, TokenRecord, TokenStore } from '../store/token-store.js';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';

/**
 * The Prometheus metrics of one server, in a registry of its own (not prom-client's global
 * one), so that several apps in one process (tests) do not share counters.
 */
export class Metrics {
  readonly registry = new Registry();
  // The metrics counted on every request are plain-number families (see metric-families.ts).
  readonly requests = new CounterFamily('tollgate_http_requests_total', 'HTTP requests by endpoint and status code', ['endpoint', 'status'], this.registry);
  readonly requestSeconds = new HistogramFamily(
    'tollgate_http_request_duration_seconds',
    'Time to answer an HTTP request, by endpoint',
    ['endpoint'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    this.registry,
  );
  readonly tokensIssued = new CounterFamily('tollgate_tokens_issued_total', 'Access tokens issued, by client', ['client_id'], this.registry);
  readonly authFailures = new Counter({
    name: 'tollgate_client_auth_failures_total',
    help: 'Failed client authentications, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly argon2Seconds = new Histogram({
    name: 'tollgate_argon2_verify_duration_seconds',
    help: 'Time of one argon2 verification, queueing included',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly argon2QueueFull = new Counter({
    name: 'tollgate_argon2_queue_full_total',
    help: 'argon2 verifications refused (503) because the queue was full; not in the verification histogram',
    registers: [this.registry],
  });
  readonly storeSeconds = new HistogramFamily(
    'tollgate_store_operation_duration_seconds',
    'Time of token store operations, by operation and outcome',
    ['operation', 'outcome'],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    this.registry,
  );
  // Every worker of `serve --workers N` reloads the same files and refuses the same change, so the
  // cluster sum takes the largest count rather than counting one refused edit N times.
  readonly reloadsRejected = new Counter({
    name: 'tollgate_reloads_rejected_total',
    help: 'Changes to the client registry or the key folder that were refused (the last good version stays in use), by source',
    labelNames: ['source'] as const,
    registers: [this.registry],
    aggregator: 'max',
  });
  // These three are read from their sources whenever the registry is collected (a scrape, or the
  // primary collecting the workers' registries), so they are never stale. Every worker shows the
  // same values: summed over workers they would be wrong, so the cluster sum takes the largest.
  readonly registryLoadedAt = new Gauge({
    name: 'tollgate_registry_loaded_timestamp_seconds',
    help: 'When the client registry in use was loaded (Unix time)',
    registers: [this.registry],
    aggregator: 'max',
    collect: () => {
      if (this.#sources) this.registryLoadedAt.set(this.#sources.registry.loadedAt() / 1000);
    },
  });
  readonly registryClients = new Gauge({
    name: 'tollgate_registry_clients',
    help: 'Clients in the registry in use',
    registers: [this.registry],
    aggregator: 'max',
    collect: () => {
      if (this.#sources) this.registryClients.set(this.#sources.registry.all().length);
    },
  });
  readonly signingKeyCreatedAt = new Gauge({
    name: 'tollgate_signing_key_created_timestamp_seconds',
    help: 'When the key that signs new tokens was created (Unix time)',
    registers: [this.registry],
    aggregator: 'max',
    collect: () => {
      if (this.#sources) this.signingKeyCreatedAt.set(this.#sources.keys.signingKey().createdAt / 1000);
    },
  });

  #sources: { registry: ClientRegistry; keys: KeySet } | undefined;

  /** Where the registry and key gauges read their values. */
  watch(registry: ClientRegistry, keys: KeySet): void {
    this.#sources = { registry, keys };
  }

  /** The children of each endpoint and status, found with one lookup per request. */
  readonly #requestChildren = new Map<string, { count: CounterChild; seconds: HistogramChild }>();

  /** Counts and times one answered request. */
  observeRequest(endpoint: string, status: number, seconds: number): void {
    const key = `${endpoint} ${status}`;
    let child = this.#requestChildren.get(key);
    if (child === undefined) {
      child = { count: this.requests.child(endpoint, String(status)), seconds: this.requestSeconds.child(endpoint) };
      this.#requestChildren.set(key, child);
    }
    child.count.inc();
    child.seconds.observe(seconds);
  }

  constructor(options: { processMetrics?: boolean } = {}) {
    // Both series exist from the start, so that an alert on their increase sees the first refusal.
    for (const source of ['registry', 'keys']) this.reloadsRejected.inc({ source }, 0);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
  }

  /** Times a token store operation; its outcome is ok or error. */
  async timeStore<T>(operation: string, op: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const result = await op();
      outcome = 'ok';
      return result;
    } finally {
      this.storeSeconds.child(operation, outcome).observe(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
}

/** A TokenStore that reports the latency and errors of every operation. */
export class InstrumentedTokenStore implements TokenStore {
  constructor(
    private readonly inner: TokenStore,
    private readonly metrics: Metrics,
  ) {}

  record(token: TokenRecord): Promise<void> {
    return this.metrics.timeStore('record', () => this.inner.record(token));
  }
  find(jti: string): Promise<TokenRecord | undefined> {
    return this.metrics.timeStore('find', () => this.inner.find(jti));
  }
  revoke(jti: string, at: number): Promise<boolean> {
    return this.metrics.timeStore('revoke', () => this.inner.revoke(jti, at));
  }
  revokeClient(clientId: string, at: number): Promise<number | undefined> {
    return this.metrics.timeStore('revoke_client', () => this.inner.revokeClient(clientId, at));
  }
  purgeExpired(now: number): Promise<number> {
    return this.metrics.timeStore('purge', () => this.inner.purgeExpired(now));
  }
  claimOnce(key: string, expiresAt: number, now: number, options?: ClaimOptions): Promise<boolean> {
    return this.metrics.timeStore('claim_once', () => this.inner.claimOnce(key, expiresAt, now, options));
  }
  reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation> {
    return this.metrics.timeStore('reserve_hits', () => this.inner.reserveHits(limits, windowMs, now));
  }
  releaseHits(hits: readonly ReservedHit[], windowMs: number, now: number): Promise<void> {
    return this.metrics.timeStore('release_hits', () => this.inner.releaseHits(hits, windowMs, now));
  }
  peekCounts(keys: readonly string[], now: number): Promise<FailureCounter[]> {
    return this.metrics.timeStore('peek_counts', () => this.inner.peekCounts(keys, now));
  }
  // The signing key records are read by the key set, from the adapter itself; passed through
  // uncounted for whoever holds this wrapper.
  listSigningKeys(): Promise<SigningKeyList> {
    return this.inner.listSigningKeys();
  }
  signingKeyGeneration(): Promise<number> {
    return this.inner.signingKeyGeneration();
  }
  addSigningKey(record: SigningKeyRecord, options?: { onlyIfNone?: boolean }): Promise<boolean> {
    return this.inner.addSigningKey(record, options);
  }
  removeSigningKey(kid: string): Promise<boolean> {
    return this.inner.removeSigningKey(kid);
  }
  resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    return this.inner.resealSigningKeys(generation, reseals);
  }
  ping(): Promise<void> {
    return this.metrics.timeStore('ping', () => this.inner.ping());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
