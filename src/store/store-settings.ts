/**
 * The `store` section of tollgate.yaml as the factory needs it, already validated by the config
 * loader (which checks `url` with shared/redis-url.ts). Declared here rather than imported from
 * config/ so that the stores and the config loader never import each other.
 */
export interface StoreSettings {
  readonly kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  /** The SQLite file, absolute. */
  readonly path: string;
  /** Required when kind is redis (a Redis URL) or postgres (a libpq URL, checked with shared/postgres-url.ts). */
  readonly url?: string | undefined;
  /** Prefix of every Redis key. */
  readonly prefix: string;
  /** Redis: exactly one of url, sentinel, cluster. */
  readonly sentinel?: { readonly master: string; readonly nodes: readonly string[]; readonly username?: string | undefined; readonly password?: string | undefined } | undefined;
  readonly cluster?: { readonly nodes: readonly string[] } | undefined;
  /** Redis with sentinel or cluster: the data servers' credentials and TLS. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly tls?: boolean | undefined;
  /** Redis: replicas that must acknowledge a revocation (WAIT) before it is answered. */
  readonly min_replicas?: number | undefined;
}
