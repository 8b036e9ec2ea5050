import type { Logger } from 'pino';
import type { StoreSettings } from './store-settings.js';
import { MemoryTokenStore } from './memory-token-store.js';
import { describeRedis, RedisTokenStore, type RedisTokenStoreOptions } from './redis-token-store.js';
import { SqliteTokenStore } from './sqlite-token-store.js';
import type { TokenStore } from './token-store.js';

/**
 * The adapter `store.kind` names. Throws ConfigError when it cannot be opened. A Redis store
 * connects in the background; `logger` hears when it loses and regains its server. With
 * `mustExist`, a SQLite file that does not exist yet is refused rather than created.
 */
export function createTokenStore(store: StoreSettings, logger?: Pick<Logger, 'warn' | 'info'>, options: { mustExist?: boolean } = {}): TokenStore {
  switch (store.kind) {
    case 'memory':
      return new MemoryTokenStore();
    case 'sqlite':
      return new SqliteTokenStore(store.path, options);
    case 'redis':
      return new RedisTokenStore({ ...redisStoreOptions(store), logger });
  }
}

/** What a Redis store is opened with, from the `store` section (validated by the config loader). */
export function redisStoreOptions(store: StoreSettings): RedisTokenStoreOptions {
  return {
    url: store.url,
    sentinel: store.sentinel,
    cluster: store.cluster,
    username: store.username,
    password: store.password,
    tls: store.tls,
    minReplicas: store.min_replicas,
    prefix: store.prefix,
  };
}

/** Names the store for an operator: the SQLite file, or the Redis URL without its credentials. */
export function describeStore(store: StoreSettings): string {
  switch (store.kind) {
    case 'memory':
      return 'the in-memory token store';
    case 'sqlite':
      return store.path;
    case 'redis':
      return describeRedis(store);
  }
}
