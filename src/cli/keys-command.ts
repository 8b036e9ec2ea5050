import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { loadRegistryFile } from '../clients/yaml-registry.js';
import { ConfigError } from '../shared/config-error.js';
import { loadConfig, type Config } from '../config/config.js';
import { DiskKeySet, generateKeyFile } from '../keys/disk-key-set.js';
import { removableTimes } from '../keys/key-retention.js';
import type { Io } from './io.js';
import { copyDirKeysToStore, listStoreKeys, pruneStoreKeys, rekeyKeys, rotateStoreKey } from './keys-store-command.js';
import { formatTable } from './table.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

export const KEYS_HELP = `Usage: tollgate keys list [--config FILE]
       tollgate keys rotate [--config FILE]
       tollgate keys prune [--dry-run] [--config FILE]
       tollgate keys rekey [--new-key-file FILE] [--config FILE]
       tollgate keys copy-to-store [--config FILE]

Manage the signing keys in keys.dir, or in the token store with keys.source store. Every key is
published in the JWKS; the newest one that has been published for keys.publish_before_use signs
new tokens. A running server re-reads the folder every two seconds or so, and the store every
second or two.

Commands:
  list        the keys, newest first: which one signs, which are published only (for the tokens
              they signed), which are pending, and from when prune may remove each old one
  rotate      write a new key of keys.algorithm and print its kid; running servers publish it at once
              and sign with it once keys.publish_before_use has passed
  prune       remove the keys no live token can have been signed with, printing each kid
  rekey       keys.source store: seal every key in the store under the key-encryption key of
              --new-key-file (or of keys.encryption_key_file), all at once, and print how many
  copy-to-store
              keys.source store: copy every key of keys.dir into the store with its times,
              printing each kid added (the move from keys.dir to the store)

Options:
  --dry-run       prune: print the kids that would be removed, and remove nothing
  --new-key-file FILE
                  rekey: the new key-encryption key (32 random bytes, base64)
  --config FILE   config file (default: $TOLLGATE_CONFIG, else config/tollgate.yaml)
  -h, --help      this text`;

export async function keysCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') return help(io);
  switch (sub) {
    case 'list':
      return listKeys(rest, io);
    case 'rotate':
      return rotateKey(rest, io);
    case 'prune':
      return pruneKeys(rest, io);
    case 'rekey':
      return rekeyKeys(rest, io, () => help(io));
    case 'copy-to-store':
      return copyDirKeysToStore(rest, io, () => help(io));
    default:
      throw new UsageError(sub === undefined ? 'missing command (see tollgate keys --help)' : `unknown command "keys ${sub}"`);
  }
}

async function listKeys(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, {});
  if (values.help) return help(io);
  positionals(pos, [], 'tollgate keys list [--config FILE]');
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if (config.keys.source === 'store') return listStoreKeys(config, io);
  const keySet = await loadKeySet(config, io);
  if (keySet === undefined) {
    io.err(`no keys in ${config.keys.dir}; serve generates one on first start`);
    return 0;
  }
  let maxTtl: number | undefined;
  try {
    maxTtl = longestTokenLifetime(config);
  } catch (err) {
    // The list is still worth showing; only the removal times depend on the registry.
    if (!(err instanceof ConfigError)) throw err;
    io.err(`cannot tell when old keys may be removed, the registry does not load: ${err.message.split('\n')[0]}`);
  }
  const keys = removableTimes(keySet.list(), { publishBeforeUseMs: publishBeforeUseMs(config), maxTokenTtlMs: (maxTtl ?? 0) * 1000 });
  const rows = [['KID', 'CREATED', 'KEY', 'USE', 'PRUNABLE_FROM', 'FILE']];
  for (const k of keys) {
    const prunable = k.removableAt === undefined ? '-' : maxTtl === undefined ? 'unknown' : iso(k.removableAt);
    rows.push([k.kid, iso(k.createdAt), k.alg === 'RS256' ? `RSA-${k.bits}` : k.alg === 'ES256' ? 'EC-P256' : 'Ed25519', k.use, prunable, k.file]);
  }
  for (const line of formatTable(rows)) io.out(line);
  return 0;
}

async function rotateKey(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, {});
  if (values.help) return help(io);
  positionals(pos, [], 'tollgate keys rotate [--config FILE]');
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if (config.keys.source === 'store') return rotateStoreKey(config, io);
  // A folder the servers would refuse to reload (a broken file) would never publish the new
  // key, so it is refused here first.
  const before = await loadKeySet(config, io);
  const kid = await generateKeyFile(config.keys.dir, config.keys.algorithm);
  const file = join(config.keys.dir, `${kid}.pem`);
  // The servers count from the file's mtime, so the times told here do too.
  const createdAt = statSync(file).mtimeMs;
  io.out(kid);
  if (before === undefined) {
    io.err(`wrote ${file}: the only key, so it signs as soon as a server loads it`);
    return 0;
  }
  const delayMs = publishBeforeUseMs(config);
  io.err(`wrote ${file}: running servers publish it in their JWKS within seconds, and sign new tokens with it from ${iso(createdAt + delayMs)}`);
  if (config.keys.publish_before_use < config.metadata.max_age) {
    io.err(
      `warning: keys.publish_before_use (${config.keys.publish_before_use} s) is shorter than metadata.max_age (${config.metadata.max_age} s): ` +
        'a resource server that caches the JWKS that long may meet tokens of the new key before it sees the key',
    );
  }
  return 0;
}

async function pruneKeys(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { 'dry-run': { type: 'boolean' } });
  if (values.help) return help(io);
  positionals(pos, [], 'tollgate keys prune [--dry-run] [--config FILE]');
  const dryRun = values['dry-run'] === true;
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if (config.keys.source === 'store') return pruneStoreKeys(config, io, dryRun);
  const keySet = await loadKeySet(config, io);
  if (keySet === undefined) {
    io.err(`no keys in ${config.keys.dir}; nothing to remove`);
    return 0;
  }
  const delayMs = publishBeforeUseMs(config);
  const keys = removableTimes(keySet.list(), { publishBeforeUseMs: delayMs, maxTokenTtlMs: longestTokenLifetime(config) * 1000 });
  const now = Date.now();
  let removed = 0;
  for (const k of keys) {
    // Only keys that merely verify can go, and never every key: the signing key always stays.
    if (k.use === 'published' && k.removableAt !== undefined && now >= k.removableAt && removed < keys.length - 1) {
      if (!dryRun) removeKeyFile(k.file);
      io.out(k.kid);
      removed++;
    } else if (k.use === 'signing') {
      io.err(`kid ${k.kid} signs new tokens`);
    } else if (k.use === 'pending') {
      io.err(`kid ${k.kid} is pending: it signs from ${iso(k.createdAt + delayMs)}`);
    } else {
      io.err(`kid ${k.kid} still verifies tokens until ${k.removableAt === undefined ? 'further notice' : iso(k.removableAt)}`);
    }
  }
  const count = `${removed} key${removed === 1 ? '' : 's'}`;
  io.err(removed === 0 ? 'no key can be removed yet' : dryRun ? `dry run: ${count} can be removed; nothing was removed` : `removed ${count}`);
  return 0;
}

/**
 * The keys in keys.dir, undefined when there are none yet; warns of key files left out. Throws
 * ConfigError for a broken folder.
 */
async function loadKeySet(config: Config, io: Io): Promise<DiskKeySet | undefined> {
  try {
    const keySet = await DiskKeySet.load(config.keys.dir, { generateIfEmpty: false, publishBeforeUseMs: publishBeforeUseMs(config) });
    for (const line of keySet.skipped()) io.err(`warning: ${line}`);
    return keySet;
  } catch (err) {
    if (err instanceof ConfigError && /holds no keys/.test(err.message)) return undefined;
    throw err;
  }
}

function publishBeforeUseMs(config: Config): number {
  return config.keys.publish_before_use * 1000;
}

/**
 * The longest lifetime, in seconds, that a token can be given: tokens.ttl or any client's
 * token_ttl (disabled clients included: their tokens still verify offline until they expire).
 */
function longestTokenLifetime(config: Config): number {
  const registry = loadRegistryFile(config.clients_file, { defaultAudience: config.tokens.audience });
  return Math.max(config.tokens.ttl, ...registry.all().map((c) => c.tokenTtl ?? 0));
}

function removeKeyFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    throw ConfigError.single(file, `cannot remove: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function help(io: Io): number {
  io.out(KEYS_HELP);
  return 0;
}
