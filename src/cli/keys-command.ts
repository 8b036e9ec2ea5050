import { unlinkSync } from 'node:fs';
import { ConfigError } from '../shared/config-error.js';
import { loadConfig } from '../config/config.js';
import { generateKeyFile } from '../keys/disk-key-set.js';
import { refuseReadOnly } from '../keys/key-dir.js';
import { removableTimes } from '../keys/key-retention.js';
import type { Io } from './io.js';
import { lifetimeForList, longestTokenLifetime, pruneKeys as pruneListed } from './key-pruning.js';
import { copyDirKeysToStore, listStoreKeys, pruneStoreKeys, rekeyKeys, rotateStoreKey } from './keys-store-command.js';
import { iso, loadKeySet, publishBeforeUseMs } from './key-folder.js';
import { exportKeys, importKey } from './keys-transfer-command.js';
import { formatTable } from './table.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

export const KEYS_HELP = `Usage: tollgate keys list [--config FILE]
       tollgate keys rotate [--config FILE]
       tollgate keys prune [--dry-run] [--config FILE]
       tollgate keys export --public [--out FILE] [--config FILE]
       tollgate keys export --to-dir DIR [--config FILE]
       tollgate keys import FILE [--created TIME] [--signs-from TIME] [--config FILE]
       tollgate keys rekey [--new-key-file FILE] [--config FILE]
       tollgate keys copy-to-store [--config FILE]

Manage the signing keys in keys.dir, or in the token store with keys.source store. Every key is
published in the JWKS; of the keys whose signs-from time has come, the latest signs new tokens.
Each key keeps its times with it: a key file carries them in header lines before the PEM
(Tollgate-Created, Tollgate-Signs-From), so copying the folder or rewriting it (a Kubernetes
Secret) keeps them; a key in the store keeps them in its record. A running server re-reads the
folder every two seconds or so, and the store every second or two.

Commands:
  list        the keys, newest first: when each was created and signs from, which one signs,
              which are published only (for the tokens they signed), which are pending, and from
              when prune may remove each old one
  rotate      write a new key of keys.algorithm and print its kid; running servers publish it at once
              and sign with it once keys.publish_before_use has passed
  prune       remove the keys no live token can have been signed with, printing each kid
  export      --public: print the JWKS as /.well-known/jwks.json serves it (or write it to --out);
              --to-dir DIR: write every key with its times into DIR (mode 0600), printing each kid
  import      bring in a private key and print its kid: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM, a
              file written by export --to-dir (its times are kept), a private JWK, or a JWK Set
              with one private key; FILE - reads stdin
  rekey       keys.source store: seal every key in the store under the key-encryption key of
              --new-key-file (or of keys.encryption_key_file), all at once, and print how many
  copy-to-store
              keys.source store: copy every key of keys.dir into the store with its times,
              printing each kid added (the move from keys.dir to the store)

Options:
  --dry-run           prune: print the kids that would be removed, and remove nothing
  --public            export: the public keys, as a JWK Set
  --out FILE          export --public: write to FILE instead of stdout
  --to-dir DIR        export: write the private keys into DIR
  --created TIME      import: when the key was made (default: its file's, else now)
  --signs-from TIME   import: from when it may sign (default: its file's, else now +
                      keys.publish_before_use); "now" for a key already in use elsewhere
                      TIME is "now" or RFC 3339, e.g. 2026-01-31T12:00:00Z
  --new-key-file FILE rekey: the new key-encryption key (32 random bytes, base64)
  --config FILE       config file (default: $TOLLGATE_CONFIG, else config/tollgate.yaml)
  -h, --help          this text

A folder that tollgate may not write (read-only, or a Kubernetes Secret volume, which holds ..data)
is only read: rotate, prune and import refuse it; change the Secret instead.`;

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
    case 'export':
      return exportKeys(rest, io, help);
    case 'import':
      return importKey(rest, io, help);
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
  const keySet = await loadKeySet(config, io, { addTimes: true });
  if (keySet === undefined) {
    io.err(`no keys in ${config.keys.dir}; serve generates one on first start`);
    return 0;
  }
  const maxTtl = lifetimeForList(config, io);
  const keys = removableTimes(keySet.list(), { maxTokenTtlMs: (maxTtl ?? 0) * 1000 });
  const rows = [['KID', 'CREATED', 'SIGNS_FROM', 'KEY', 'USE', 'PRUNABLE_FROM', 'FILE']];
  for (const k of keys) {
    const prunable = k.removableAt === undefined ? '-' : maxTtl === undefined ? 'unknown' : iso(k.removableAt);
    rows.push([k.kid, iso(k.createdAt), iso(k.signsFrom), k.alg === 'RS256' ? `RSA-${k.bits}` : k.alg === 'ES256' ? 'EC-P256' : 'Ed25519', k.use, prunable, k.file]);
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
  // A read-only folder (a Kubernetes Secret volume) is refused before anything is said.
  refuseReadOnly(config.keys.dir, 'write a new key into');
  // A folder the servers would refuse to reload (a broken file) would never publish the new
  // key, so it is refused here first.
  const before = await loadKeySet(config, io, { addTimes: true });
  const delayMs = publishBeforeUseMs(config);
  const { kid, file, signsFrom } = await generateKeyFile(config.keys.dir, config.keys.algorithm, { publishBeforeUseMs: delayMs });
  io.out(kid);
  if (before === undefined) {
    io.err(`wrote ${file}: the only key, so it signs as soon as a server loads it`);
    return 0;
  }
  io.err(`wrote ${file}: running servers publish it in their JWKS within seconds, and sign new tokens with it from ${iso(signsFrom)}`);
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
  if (!dryRun) refuseReadOnly(config.keys.dir, 'remove keys from');
  const keySet = await loadKeySet(config, io, { addTimes: !dryRun });
  if (keySet === undefined) {
    io.err(`no keys in ${config.keys.dir}; nothing to remove`);
    return 0;
  }
  const keys = removableTimes(keySet.list(), { maxTokenTtlMs: longestTokenLifetime(config) * 1000 });
  return pruneListed(keys, dryRun, (k) => removeKeyFile(k.file), io);
}

function removeKeyFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    throw ConfigError.single(file, `cannot remove: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function help(io: Io): number {
  io.out(KEYS_HELP);
  return 0;
}
