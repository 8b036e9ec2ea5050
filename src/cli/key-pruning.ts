import { loadRegistryFile } from '../clients/yaml-registry.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../shared/config-error.js';
import type { KeyUse } from '../keys/disk-key-set.js';
import type { Io } from './io.js';
import { iso } from './key-folder.js';

/** A key as prune sees it, in either source: newest first, with from when it may go. */
export interface PrunableKey {
  kid: string;
  use: KeyUse;
  signsFrom: number;
  removableAt: number | undefined;
}

/**
 * The longest lifetime, in seconds, that a token can be given: tokens.ttl or any client's
 * token_ttl (disabled clients included: their tokens still verify offline until they expire).
 */
export function longestTokenLifetime(config: Config): number {
  const registry = loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
  return Math.max(config.tokens.ttl, ...registry.all().map((c) => c.tokenTtl ?? 0));
}

/**
 * For `keys list`: the longest token lifetime in seconds, or undefined (said on stderr) when the
 * registry does not load; the list is still worth showing, only the removal times need it.
 */
export function lifetimeForList(config: Config, io: Io): number | undefined {
  try {
    return longestTokenLifetime(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`cannot tell when old keys may be removed, the registry does not load: ${err.message.split('\n')[0]}`);
    return undefined;
  }
}

/**
 * `keys prune` for either source: removes (unless dryRun) the keys past their removal time,
 * printing each kid on stdout, and says on stderr why each other key stays.
 */
export async function pruneKeys<K extends PrunableKey>(keys: readonly K[], dryRun: boolean, remove: (key: K) => void | Promise<void>, io: Io): Promise<number> {
  const now = Date.now();
  let removed = 0;
  for (const k of keys) {
    // Only keys that merely verify can go, and never every key: the signing key always stays.
    if (k.use === 'published' && k.removableAt !== undefined && now >= k.removableAt && removed < keys.length - 1) {
      if (!dryRun) await remove(k);
      io.out(k.kid);
      removed++;
    } else if (k.use === 'signing') {
      io.err(`kid ${k.kid} signs new tokens`);
    } else if (k.use === 'pending') {
      io.err(`kid ${k.kid} is pending: it signs from ${iso(k.signsFrom)}`);
    } else {
      io.err(`kid ${k.kid} still verifies tokens until ${k.removableAt === undefined ? 'further notice' : iso(k.removableAt)}`);
    }
  }
  const count = `${removed} key${removed === 1 ? '' : 's'}`;
  io.err(removed === 0 ? 'no key can be removed yet' : dryRun ? `dry run: ${count} can be removed; nothing was removed` : `removed ${count}`);
  return 0;
}
