import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { StoreSettings } from './store-settings.js';
import { ConfigError } from '../shared/config-error.js';
import { permissionProblem } from '../shared/file-access.js';
import { PostgresTokenStore } from './postgres-token-store.js';
import { POSTGRES_SCHEMA_VERSION, readVersion } from './postgres-schema.js';
import { RedisTokenStore } from './redis-token-store.js';
import { redisStoreOptions } from './create-token-store.js';
import { SQLITE_SCHEMA_VERSION } from './sqlite-token-store.js';

/**
 * Tries the token store the config names, as `serve` would reach it, without changing it: an
 * existing SQLite file is opened read-only and its schema version read (a missing one must be
 * creatable), a Redis server is pinged, a PostgreSQL database connected to and its schema version read. Resolves what was found, for `config check` to print;
 * throws a one-line ConfigError when serve could not use it. Never names a password.
 */
export async function checkTokenStore(store: StoreSettings, configFile: string): Promise<string> {
  switch (store.kind) {
    case 'memory':
      return 'memory token store (nothing to open; tokens last as long as the process)';
    case 'sqlite':
      return checkSqlite(store.path);
    case 'redis': {
      const redis = new RedisTokenStore(redisStoreOptions(store));
      try {
        await redis.ping();
      } catch (err) {
        // A RedisStoreError names the server without its credentials.
        const field = store.sentinel !== undefined ? 'store.sentinel' : store.cluster !== undefined ? 'store.cluster' : 'store.url';
        throw ConfigError.single(configFile, `cannot reach the token store: ${(err as Error).message}`, field);
      } finally {
        await redis.close();
      }
      return `redis token store ${redis.display}`;
    }
    case 'postgres':
      if (store.url === undefined) throw new TypeError('store.url is required when store.kind is postgres');
      return checkPostgres(store.url, configFile);
  }
}

/**
 * Connects as serve would (the writable host of several) and reads the schema version, changing
 * nothing: an empty database is fine (serve creates the tables), a newer schema is not.
 */
async function checkPostgres(url: string, configFile: string): Promise<string> {
  const pg = new PostgresTokenStore({ url, mustExist: true });
  let version: number;
  try {
    version = await pg.read((sql) => readVersion(sql));
  } catch (err) {
    // A PostgresStoreError names the servers without the password.
    throw ConfigError.single(configFile, `cannot reach the token store: ${(err as Error).message}`, 'store.url');
  } finally {
    await pg.close();
  }
  if (version > POSTGRES_SCHEMA_VERSION) {
    throw ConfigError.single(configFile, `the token store ${pg.target.display} has schema version ${version}, newer than this tollgate knows (${POSTGRES_SCHEMA_VERSION}); upgrade tollgate`, 'store.url');
  }
  const state = version === 0 ? ' (no tables yet: serve creates them)' : version < POSTGRES_SCHEMA_VERSION ? ` (schema version ${version}: serve migrates it)` : '';
  return `postgres token store ${pg.target.display}${state}`;
}

function checkSqlite(path: string): string {
  if (!existsSync(path)) {
    // serve creates the file and the folders above it: the nearest folder that exists must be writable.
    let dir = dirname(path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw ConfigError.single(dir, `cannot create the token store ${path} here: ${permissionProblem(err, 'write') ?? (err as NodeJS.ErrnoException).code}`);
    }
    return `sqlite token store ${path} (not created yet: serve creates it)`;
  }
  let db: Database.Database | undefined;
  let version: number;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    version = db.pragma('user_version', { simple: true }) as number;
  } catch (err) {
    throw ConfigError.single(path, `cannot open the token store: ${permissionProblem(err, 'read') ?? (err as Error).message}`);
  } finally {
    db?.close();
  }
  if (version > SQLITE_SCHEMA_VERSION) {
    throw ConfigError.single(path, `the token store has schema version ${version}, newer than this tollgate knows (${SQLITE_SCHEMA_VERSION}); upgrade tollgate`);
  }
  try {
    accessSync(path, constants.W_OK);
  } catch (err) {
    throw ConfigError.single(path, `the token store cannot be written: ${permissionProblem(err, 'write') ?? (err as NodeJS.ErrnoException).code}`);
  }
  return `sqlite token store ${path}`;
}
