import type { Logger } from 'pino';
import type { StoreSettings } from './store-settings.js';
import { MemoryTokenStore } from './memory-token-store.js';
import { PostgresTokenStore } from './postgres-token-store.js';
import { describeRedis, RedisTokenStore, type RedisTokenStoreOptions } from './redis-token-store.js';
import { parsePostgresUrl } from '../shared/postgres-url.js';
import { SqliteTokenStore } from './sqlite-token-store.js';
import type { TokenStore } from './token-store.js';

/**
 * The adapter `store.kind` names. Throws ConfigError when it cannot be opened. A Redis or
 * PostgreSQL store connects in the background; `logger` hears when it loses and regains its
 * server. With `mustExist`, a SQLite file that does not exist yet, or a PostgreSQL database
 * without tollgate's tables, is refused rather than created.
 */
export function createTokenStore(store: StoreSettings, logger?: Pick<Logger, 'warn' | 'info'>, options: { mustExist?: boolean } = {}): TokenStore {
  switch (store.kind) {
    case 'memory':
      return new MemoryTokenStore();
    case 'sqlite':
      return new SqliteTokenStore(store.path, options);
    case 'redis':
      return new RedisTokenStore({ ...redisStoreOptions(store), logger });
    case 'postgres':
      if (store.url === undefined) throw new TypeError('store.url is required when store.kind is postgres');
      return new PostgresTokenStore({ url: store.url, ...(logger === undefined ? {} : { logger }), mustExist: options.mustExist ?? false });
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

/** Names the store for an operator: the SQLite file, or the server's URL without its credentials. */
export function describeStore(store: StoreSettings): string {
  switch (store.kind) {
    case 'memory':
      return 'the in-memory token store';
    case 'sqlite':
      return store.path;
    case 'redis':
      return describeRedis(store);
    case 'postgres':
      return store.url === undefined ? 'postgres' : parsePostgresUrl(store.url).display;
  }
}
