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
}
