import type { Config } from '../config.js';
import { MemoryTokenStore } from './memory-token-store.js';
import { SqliteTokenStore } from './sqlite-token-store.js';
import type { TokenStore } from './token-store.js';

/** The adapter `store.kind` names. Throws ConfigError when it cannot be opened. */
export function createTokenStore(store: Config['store']): TokenStore {
  switch (store.kind) {
    case 'memory':
      return new MemoryTokenStore();
    case 'sqlite':
      return new SqliteTokenStore(store.path);
  }
}
