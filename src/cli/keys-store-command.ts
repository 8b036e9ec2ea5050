import type { KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import { DiskKeySet } from '../keys/disk-key-set.js';
import { readKek, readKeks, sealPrivateKey, type Kek, type KeyTimes } from '../keys/key-encryption.js';
import { newPrivateKey } from '../keys/key-material.js';
import { removableTimes } from '../keys/key-retention.js';
import type { PublicJwk } from '../keys/key-set.js';
import { StoreKeySet } from '../keys/store-key-set.js';
import { resealAll } from '../keys/store-rekey.js';
import { ConfigError } from '../shared/config-error.js';
import { createTokenStore, describeStore } from '../store/create-token-store.js';
import type { TokenStore } from '../store/token-store.js';
import type { Io } from './io.js';
import { iso } from './key-folder.js';
import { lifetimeForList, longestTokenLifetime, pruneKeys } from './key-pruning.js';
import { formatTable } from './table.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

// `tollgate keys …` with keys.source store: the keys live in the token store the servers share,
// so these commands work from any machine with the config and the key-encryption key.

export const KEYS_REKEY_USAGE = 'tollgate keys rekey [--new-key-file FILE] [--config FILE]';

/** The store of config (it must exist: a server made it), open while `use` runs. */
async function withStore<T>(config: Config, use: (store: TokenStore, keks: [Kek, ...Kek[]]) => Promise<T>): Promise<T> {
  // The key-encryption keys first: a missing file is told before any connection is tried.
  const keks = readKeks(config.keys.encryption_key_file!, config.keys.previous_encryption_key_file);
  const store = createTokenStore(config.store, undefined, { mustExist: true });
  try {
    return await use(store, keks);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) throw err;
    throw ConfigError.single(describeStore(config.store), `cannot use the signing keys in the store: ${(err as Error).message}`);
  } finally {
    await store.close();
  }
}

/** The keys in the store, every one opened; undefined when it holds none. */
async function openKeys(config: Config, store: TokenStore, keks: [Kek, ...Kek[]]): Promise<StoreKeySet | undefined> {
  if ((await store.listSigningKeys()).keys.length === 0) return undefined;
  return StoreKeySet.open(store, {
    keks,
    generateIfEmpty: false,
    algorithm: config.keys.algorithm,
    publishBeforeUseMs: config.keys.publish_before_use * 1000,
    storeName: describeStore(config.store),
  });
}

export async function listStoreKeys(config: Config, io: Io): Promise<number> {
  return withStore(config, async (store, keks) => {
    const set = await openKeys(config, store, keks);
    if (set === undefined) {
      io.err(`no keys in the store ${describeStore(config.store)}; serve makes one on first start`);
      return 0;
    }
    const maxTtl = lifetimeForList(config, io);
    const rows = [['KID', 'CREATED', 'SIGNS_FROM', 'KEY', 'USE', 'PRUNABLE_FROM', 'KEK']];
    for (const k of withRemovalTimes(set, (maxTtl ?? 0) * 1000)) {
      const prunable = k.removableAt === undefined ? '-' : maxTtl === undefined ? 'unknown' : iso(k.removableAt);
      rows.push([k.kid, iso(k.createdAt), iso(k.signsFrom), k.alg === 'RS256' ? `RSA-${k.bits}` : k.alg === 'ES256' ? 'EC-P256' : 'Ed25519', k.use, prunable, k.kekId]);
    }
    for (const line of formatTable(rows)) io.out(line);
    return 0;
  });
}

export async function rotateStoreKey(config: Config, io: Io): Promise<number> {
  return withStore(config, async (store, keks) => {
    const set = await openKeys(config, store, keks);
    if (set === undefined) {
      // The first key signs at once, as a server's first start would make it.
      const { kid } = await importIntoStore(config, store, keks[0], await newPrivateKey(config.keys.algorithm), {});
      io.out(kid);
      io.err(`added ${kid} to the store: the only key, so it signs as soon as a server loads it`);
      return 0;
    }
    const { kid, signsFrom } = await set.rotate(config.keys.algorithm);
    io.out(kid);
    io.err(`added ${kid} to the store: running servers publish it in their JWKS within seconds, and sign new tokens with it from ${iso(signsFrom)}`);
    if (config.keys.publish_before_use < config.metadata.max_age) {
      io.err(
        `warning: keys.publish_before_use (${config.keys.publish_before_use} s) is shorter than metadata.max_age (${config.metadata.max_age} s): ` +
          'a resource server that caches the JWKS that long may meet tokens of the new key before it sees the key',
      );
    }
    return 0;
  });
}

export async function pruneStoreKeys(config: Config, io: Io, dryRun: boolean): Promise<number> {
  return withStore(config, async (store, keks) => {
    const set = await openKeys(config, store, keks);
    if (set === undefined) {
      io.err(`no keys in the store ${describeStore(config.store)}; nothing to remove`);
      return 0;
    }
    const keys = withRemovalTimes(set, longestTokenLifetime(config) * 1000);
    return pruneKeys(keys, dryRun, (k) => store.removeSigningKey(k.kid).then(() => {}), io);
  });
}

/**
 * `keys rekey`: seals every stored key under the key-encryption key of --new-key-file, or,
 * without it, under keys.encryption_key_file (finishing a change that left keys under
 * keys.previous_encryption_key_file), in one atomic change.
 */
export async function rekeyKeys(args: string[], io: Io, help: () => number): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { 'new-key-file': { type: 'string' } });
  if (values.help) return help();
  positionals(pos, [], KEYS_REKEY_USAGE);
  const flag = values['new-key-file'];
  if (flag !== undefined && flag.trim() === '') throw new UsageError(`--new-key-file needs a file name (usage: ${KEYS_REKEY_USAGE})`);
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if (config.keys.source !== 'store') {
    throw ConfigError.single(config.file, 'keys rekey applies only to keys kept in the store (keys.source store); keys.dir holds plain key files', 'keys.source');
  }
  const next = flag === undefined ? undefined : readKek(resolve(io.cwd, flag));
  return withStore(config, async (store, keks) => {
    const target = next ?? keks[0];
    // The new key opens keys a re-seal cut short already moved under it.
    const opening = next === undefined || keks.some((k) => k.id === next.id) ? keks : [...keks, next];
    const count = await resealAll(store, opening, target);
    if (count === 0) {
      io.err(`every key in the store is already sealed under key-encryption key ${target.id} (${target.file}); nothing changed`);
      return 0;
    }
    io.out(`${count}`);
    io.err(`re-sealed ${count} key${count === 1 ? '' : 's'} under key-encryption key ${target.id} (${target.file}); running servers keep the keys they hold`);
    if (next !== undefined && next.id !== keks[0].id) {
      io.err(
        `next, on every machine: set keys.encryption_key_file to ${next.file} (keep ${keks[0].file} as keys.previous_encryption_key_file until every instance and every machine running keys commands has it), then restart or roll the instances`,
      );
    }
    return 0;
  });
}

/**
 * Adds a private key to the store with its times (by default made now, signing once
 * keys.publish_before_use has passed, or at once into an empty store): for `keys import` with
 * keys.source store. Resolves added: false when the store holds that key already. Throws
 * TypeError for a key tollgate does not sign with.
 */
export async function importIntoStore(config: Config, store: TokenStore, kek: Kek, privateKey: KeyObject, times: Partial<KeyTimes>): Promise<{ kid: string; added: boolean }> {
  const empty = (await store.listSigningKeys()).keys.length === 0;
  const createdAt = times.createdAt ?? Date.now();
  const signsFrom = times.signsFrom ?? (empty ? createdAt : createdAt + config.keys.publish_before_use * 1000);
  const record = await sealPrivateKey(kek, privateKey, { createdAt, signsFrom });
  return { kid: record.kid, added: await store.addSigningKey(record) };
}

/**
 * `keys import` and `keys export --public` with keys.source store: runs `use` with the store and
 * its keys opened (undefined when it holds none) and the key that seals new ones.
 */
export function withStoreKeys<T>(config: Config, use: (keys: StoreKeySet | undefined, add: (privateKey: KeyObject, times: Partial<KeyTimes>) => Promise<{ kid: string; added: boolean }>) => Promise<T>): Promise<T> {
  return withStore(config, async (store, keks) => use(await openKeys(config, store, keks), (key, times) => importIntoStore(config, store, keks[0], key, times)));
}

/** The keys, newest first, with when each may be pruned (counted from the signs-from of its successor). */
function withRemovalTimes(set: StoreKeySet, maxTokenTtlMs: number) {
  const listed = set.list();
  const times = removableTimes(
    listed.map((k) => ({ kid: k.kid, file: '', createdAt: k.createdAt, signsFrom: k.signsFrom, timesFrom: 'file' as const, bits: k.bits, alg: k.alg, use: k.use })),
    { maxTokenTtlMs },
  );
  return listed.map((k, i) => ({ ...k, removableAt: times[i]!.removableAt }));
}

export const KEYS_COPY_USAGE = 'tollgate keys copy-to-store [--config FILE]';

/**
 * `keys copy-to-store`: copies every key of keys.dir into the store, with its times, so that a
 * deployment moving to keys.source store keeps publishing (and signing with) the keys its
 * resource servers already know. Keys already in the store are left as they are.
 */
export async function copyDirKeysToStore(args: string[], io: Io, help: () => number): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, {});
  if (values.help) return help();
  positionals(pos, [], KEYS_COPY_USAGE);
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if (config.keys.source !== 'store') {
    throw ConfigError.single(config.file, 'keys copy-to-store copies keys.dir into the store: set keys.source to store (and keys.encryption_key_file) first', 'keys.source');
  }
  const disk = await DiskKeySet.load(config.keys.dir, { generateIfEmpty: false, publishBeforeUseMs: config.keys.publish_before_use * 1000 });
  for (const line of disk.skipped()) io.err(`warning: ${line}`);
  for (const line of disk.untimed()) io.err(`warning: ${line}`);
  return withStore(config, async (store, keks) => {
    let added = 0;
    // Each key keeps the times the folder gives it, so the key that signs now keeps signing.
    for (const k of disk.privateKeys()) {
      const { kid, added: fresh } = await importIntoStore(config, store, keks[0], k.privateKey, { createdAt: k.created, signsFrom: k.signsFrom });
      if (fresh) {
        io.out(kid);
        added++;
      } else io.err(`kid ${kid} is in the store already`);
    }
    io.err(`copied ${added} key${added === 1 ? '' : 's'} of ${config.keys.dir} into the store ${describeStore(config.store)}`);
    return 0;
  });
}

/** `keys export --public` with keys.source store: the JWKS the servers publish. */
export async function storePublicJwks(config: Config): Promise<{ keys: readonly PublicJwk[] }> {
  return withStoreKeys(config, async (keys) => {
    if (keys === undefined) throw ConfigError.single(describeStore(config.store), 'holds no signing keys (keys.source store); a server makes the first one on its first start');
    return keys.jwks();
  });
}
