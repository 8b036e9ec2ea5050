import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { loadConfig, type Config } from '../config/config.js';
import type { KeyTimes } from '../keys/key-encryption.js';
import type { PublicJwk } from '../keys/key-set.js';
import { describeStore } from '../store/create-token-store.js';
import { keyDirWriteProblem, refuseReadOnly, writeKeyFile } from '../keys/key-dir.js';
import { KeyFileError, keyId, parseKeyFile, parseTime, serializeKeyFile, type ParsedKeyFile } from '../keys/key-file.js';
import { ConfigError } from '../shared/config-error.js';
import type { Io } from './io.js';
import { iso, loadKeySet, publishBeforeUseMs } from './key-folder.js';
import { withStoreKeys } from './keys-store-command.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

/** Larger than any key file, JWK or JWK Set of one key: anything bigger is not one. */
const MAX_KEY_FILE_BYTES = 1024 * 1024;

/**
 * `keys export --public [--out FILE]`: the JWKS as /.well-known/jwks.json serves it.
 * `keys export --to-dir DIR`: every key with its times, as tollgate key files (mode 0600).
 */
export async function exportKeys(args: string[], io: Io, help: (io: Io) => number): Promise<number> {
  const usage = 'tollgate keys export (--public [--out FILE] | --to-dir DIR) [--config FILE]';
  const { values, positionals: pos } = parseCommand(args, { public: { type: 'boolean' }, 'to-dir': { type: 'string' }, out: { type: 'string' } });
  if (values.help) return help(io);
  positionals(pos, [], usage);
  const toDir = values['to-dir'];
  if ((values.public === true) === (toDir !== undefined)) throw new UsageError(`give exactly one of --public and --to-dir (usage: ${usage})`);
  if (values.out !== undefined && toDir !== undefined) throw new UsageError('--out goes with --public; --to-dir names a folder');
  if (toDir === '' || values.out === '') throw new UsageError(`${toDir === '' ? '--to-dir' : '--out'} needs a path`);
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const keySet = config.keys.source === 'store' ? await storeKeysToExport(config) : await dirKeysToExport(config, io);

  if (toDir === undefined) {
    // The very text the server answers with (discovery-route.ts serializes the same object).
    const text = JSON.stringify(keySet.jwks());
    if (values.out === undefined) {
      io.out(text);
      return 0;
    }
    const out = resolve(io.cwd, values.out);
    try {
      writeFileSync(out, `${text}\n`, { mode: 0o644 });
    } catch (err) {
      throw ConfigError.single(out, `cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    io.err(`wrote the public keys of ${keySet.jwks().keys.length} key${keySet.jwks().keys.length === 1 ? '' : 's'} to ${out}`);
    return 0;
  }

  const dir = resolve(io.cwd, toDir);
  const problem = keyDirWriteProblem(dir);
  if (problem !== undefined) throw ConfigError.single(dir, `cannot write keys into it: ${problem}`);
  const keys = keySet.privateKeys();
  for (const k of keys) {
    try {
      writeKeyFile(dir, `${k.kid}.pem`, serializeKeyFile(k));
    } catch (err) {
      throw ConfigError.single(dir, `cannot write keys into it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    io.out(k.kid);
  }
  io.err(`wrote ${keys.length} key${keys.length === 1 ? '' : 's'} with their times to ${dir} (mode 0600); they are private keys: keep that folder as safe as keys.dir`);
  return 0;
}

/** What export needs of a key source: the JWKS it publishes, and its private keys with their times. */
interface ExportableKeys {
  jwks(): { keys: readonly PublicJwk[] };
  privateKeys(): readonly { kid: string; privateKey: KeyObject; created: number; signsFrom: number }[];
}

async function dirKeysToExport(config: Config, io: Io): Promise<ExportableKeys> {
  // Reading only: the keys' times are exported as list shows them, the folder is left alone.
  const keySet = await loadKeySet(config, io, { addTimes: false });
  if (keySet === undefined) throw ConfigError.single(config.keys.dir, 'the key directory holds no keys (*.pem); nothing to export');
  return keySet;
}

async function storeKeysToExport(config: Config): Promise<ExportableKeys> {
  return withStoreKeys(config, async (keys) => {
    if (keys === undefined) throw ConfigError.single(describeStore(config.store), 'holds no signing keys (keys.source store); nothing to export');
    const jwks = keys.jwks();
    const privateKeys = keys.keys().map((k) => ({ kid: k.kid, privateKey: k.privateKey, created: k.createdAt, signsFrom: k.signsFrom }));
    return { jwks: () => jwks, privateKeys: () => privateKeys };
  });
}

/**
 * `keys import FILE [--created T] [--signs-from T]`: brings an existing private key into
 * keys.dir as `<kid>.pem` with its times (or into the store with keys.source store), and prints
 * its kid.
 */
export async function importKey(args: string[], io: Io, help: (io: Io) => number): Promise<number> {
  const usage = 'tollgate keys import FILE [--created TIME] [--signs-from TIME] [--config FILE]';
  const { values, positionals: pos } = parseCommand(args, { created: { type: 'string' }, 'signs-from': { type: 'string' } });
  if (values.help) return help(io);
  const [source] = positionals(pos, ['FILE'], usage) as [string];
  const now = Date.now();
  const createdFlag = flagTime('--created', values.created, now);
  const signsFromFlag = flagTime('--signs-from', values['signs-from'], now);
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const dir = config.keys.dir;
  if (config.keys.source === 'dir') refuseReadOnly(dir, 'import a key into');
  const parsed = await readKey(source, io);
  const created = createdFlag ?? parsed.created ?? now;
  // A key this deployment has never published signs only once resource servers can have seen it.
  const signsFrom = signsFromFlag ?? parsed.signsFrom ?? now + publishBeforeUseMs(config);
  if (signsFrom < created) throw new UsageError(`the key would sign from ${iso(signsFrom)}, before it was created (${iso(created)}); give --signs-from or --created`);
  if (config.keys.source === 'store') return importIntoStoreKeys(config, io, source, parsed, { createdAt: created, signsFrom });

  const before = await loadKeySet(config, io, { addTimes: true });
  const kid = await keyId(parsed.privateKey);
  const same = before?.list().find((k) => k.kid === kid);
  if (same !== undefined) throw ConfigError.single(source, `holds a key already in the key directory: kid ${kid} (${same.file})`);
  const file = join(dir, `${kid}.pem`);
  try {
    writeKeyFile(dir, `${kid}.pem`, serializeKeyFile({ privateKey: parsed.privateKey, created, signsFrom }), { exclusive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw code === 'EEXIST' ? ConfigError.single(file, 'already exists; remove it or import another key') : ConfigError.single(dir, `cannot import a key into the key directory (${code})`);
  }
  io.out(kid);
  const when = before === undefined ? 'as the only key, it signs as soon as a server loads it' : `it signs new tokens from ${iso(signsFrom)}`;
  io.err(`imported ${parsed.alg} key ${kid} into ${file} (created ${iso(created)}): running servers publish it within seconds; ${when}`);
  if (parsed.alg !== config.keys.algorithm) {
    io.err(`warning: the key signs ${parsed.alg} while keys.algorithm is ${config.keys.algorithm}: resource servers that accept only ${config.keys.algorithm} refuse its tokens`);
  }
  return 0;
}

/** `keys import` with keys.source store: the key sealed into the store with its times. */
async function importIntoStoreKeys(config: Config, io: Io, source: string, parsed: ParsedKeyFile, times: KeyTimes): Promise<number> {
  return withStoreKeys(config, async (keys, add) => {
    const { kid, added } = await add(parsed.privateKey, times);
    if (!added) throw ConfigError.single(source, `holds a key already in the store: kid ${kid}`);
    io.out(kid);
    const when = keys === undefined ? 'as the only key, it signs at once' : `it signs new tokens from ${iso(times.signsFrom)}`;
    io.err(`imported ${parsed.alg} key ${kid} into the store ${describeStore(config.store)} (created ${iso(times.createdAt)}): running servers publish it within seconds; ${when}`);
    if (parsed.alg !== config.keys.algorithm) {
      io.err(`warning: the key signs ${parsed.alg} while keys.algorithm is ${config.keys.algorithm}: resource servers that accept only ${config.keys.algorithm} refuse its tokens`);
    }
    return 0;
  });
}

/** --created / --signs-from: `now` or an RFC 3339 time; undefined when not given. */
function flagTime(flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'now') return now;
  const ms = parseTime(value);
  if (ms === undefined) throw new UsageError(`${flag} must be "now" or an RFC 3339 time such as 2026-01-31T12:00:00Z, not ${JSON.stringify(value.slice(0, 40))}`);
  return ms;
}

/** The key in source (a path, or - for stdin); a file that is not a usable key is a one-line error. */
async function readKey(source: string, io: Io): Promise<ParsedKeyFile> {
  let text: string;
  if (source === '-') {
    text = await io.readStdin();
  } else {
    const path = resolve(io.cwd, source);
    try {
      if (statSync(path).size > MAX_KEY_FILE_BYTES) throw new UsageError(`${source}: is larger than 1 MiB: not a key file`);
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`${source}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (text.length > MAX_KEY_FILE_BYTES) throw new UsageError(`${source}: is larger than 1 MiB: not a key file`);
  try {
    return parseKeyFile(text);
  } catch (err) {
    if (err instanceof KeyFileError) throw new UsageError(`${source}: ${err.message}`);
    throw err;
  }
}
