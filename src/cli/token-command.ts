import { loadConfig } from '../config/config.js';
import { ConfigError } from '../shared/config-error.js';
import { createTokenStore, describeStore } from '../store/create-token-store.js';
import type { TokenStore } from '../store/token-store.js';
import type { Io } from './io.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

export const TOKEN_HELP = `Usage: tollgate token revoke (--client ID | --jti JTI) [--config FILE]

Revokes issued access tokens in the token store the config names; every server sharing that
store answers introspection of them with {"active":false} at once. It says how many it revoked
and where. The store must be the servers' own: a SQLite file that does not exist is refused,
never created, and the memory store lives inside the server, out of reach.

  --client ID     every token of this client issued until now
  --jti JTI       one token, by its jti claim
  --config FILE   config file (default: $TOLLGATE_CONFIG, else config/tollgate.yaml)
  -h, --help      this text

Resource servers that validate tokens offline (JWKS) keep accepting them until they expire.`;

/**
 * Opens the configured store from the command line: the SQLite file or the Redis server the
 * servers share. The memory store lives inside a server process, so there is nothing the CLI
 * could change; a SQLite file that does not exist is not the servers' store either (a one-off
 * container with its own path): it is refused, never created.
 */
export function openStoreForCli(config: ReturnType<typeof loadConfig>, memoryHint = ''): TokenStore {
  if (config.store.kind === 'memory') {
    throw new UsageError(`store.kind is ${config.store.kind}: its tokens live only inside the server process and cannot be revoked from here${memoryHint}`);
  }
  return createTokenStore(config.store, undefined, { mustExist: true });
}

/** "3 tokens of client "x" in /var/lib/tollgate/db", or for a store that does not count, every one. */
export function revokedClientTokens(config: ReturnType<typeof loadConfig>, clientId: string, count: number | undefined): string {
  const store = config.store;
  // A Redis prefix tells one deployment's keys from another's on a shared server.
  const where = store.kind === 'redis' ? `${describeStore(store)} (prefix ${JSON.stringify(store.prefix)})` : describeStore(store);
  return count === undefined
    ? `every token of client ${JSON.stringify(clientId)} issued until now in ${where}`
    : `${count} live token${count === 1 ? '' : 's'} of client ${JSON.stringify(clientId)} in ${where}`;
}

/** A store failure as one line naming the store (never a Redis password). */
export function storeWriteError(config: ReturnType<typeof loadConfig>, err: unknown): ConfigError {
  const where = describeStore(config.store);
  const message = (err as Error).message;
  // A Redis error already starts with the server it names.
  const reason = message.startsWith(`${where}: `) ? message.slice(where.length + 2) : message;
  return ConfigError.single(where, `cannot write to the token store: ${reason}`);
}

export async function tokenCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') return print(io);
  if (sub !== 'revoke') throw new UsageError(sub === undefined ? 'missing command (see tollgate token --help)' : `unknown command "token ${sub}"`);
  const { values, positionals: pos } = parseCommand(rest, { client: { type: 'string' }, jti: { type: 'string' } });
  if (values.help) return print(io);
  positionals(pos, [], 'tollgate token revoke (--client ID | --jti JTI)');
  if ((values.client === undefined) === (values.jti === undefined)) throw new UsageError('give exactly one of --client ID or --jti JTI');

  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const store = openStoreForCli(config);
  try {
    if (values.client !== undefined) {
      const count = await store.revokeClient(values.client, Date.now());
      io.err(`revoked ${revokedClientTokens(config, values.client, count)}`);
      return 0;
    }
    if (!(await store.revoke(values.jti!, Date.now()))) {
      throw new UsageError(`no token with jti ${JSON.stringify(values.jti)} in ${describeStore(config.store)} (unknown, or expired and purged)`);
    }
    io.err(`revoked token ${values.jti} in ${describeStore(config.store)}`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) throw err;
    throw storeWriteError(config, err);
  } finally {
    await store.close();
  }
}

function print(io: Io): number {
  io.out(TOKEN_HELP);
  return 0;
}
