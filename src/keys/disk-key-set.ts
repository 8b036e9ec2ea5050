import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type CryptoKey } from 'jose';
import { systemClock, type Clock } from '../shared/clock.js';
import { ConfigError } from '../shared/config-error.js';
import { permissionProblem } from '../shared/file-access.js';
import type { KeySet, PublicJwk, SigningKey } from './key-set.js';

/** JWS algorithms tollgate signs with, each tied to one kind of key. */
export const SIGNING_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];
const MIN_RSA_BITS = 2048;

/** A key file as found in the key directory. */
export interface KeyFileInfo {
  kid: string;
  file: string;
  /** When the file was written (its mtime), ms since the epoch: the newest key signs. */
  createdAt: number;
  /** The key's size: RSA modulus bits, or the curve's (256 for P-256 and Ed25519). */
  bits: number;
  alg: SigningAlgorithm;
}

interface LoadedKey extends KeyFileInfo {
  signing: SigningKey;
  publicJwk: PublicJwk;
}

export interface DiskKeySetOptions {
  /** Generate a first key into an empty or missing directory. */
  generateIfEmpty: boolean;
  /**
   * How long a new key is published before it signs (ms), so that resource servers that cache
   * the JWKS see it before they meet a token it signed. 0 signs with the newest key at once.
   */
  publishBeforeUseMs?: number;
  /** What kind of key to generate when the directory is empty (RS256 by default). */
  algorithm?: SigningAlgorithm;
  clock?: Clock;
}

export type KeySetEvent =
  /** skipped: a line per key file left out (a symbolic link to a missing file), as skipped() says. */
  | { type: 'reloaded'; kids: string[]; skipped: string[] }
  | { type: 'rejected'; problem: ConfigError }
  | { type: 'rotated'; from: string; to: string };

/** What a key is doing now. */
export type KeyUse = 'signing' | 'published' | 'pending';

/**
 * The signing keys in `keys.dir`: PKCS#8 PEM files, one key each, named `<kid>.pem` where the
 * kid is the key's RFC 7638 thumbprint. Every key is published, so tokens signed by an older key
 * keep verifying until they expire. The newest key that has been published for
 * `publishBeforeUseMs` signs; until one has, the oldest key goes on signing.
 */
export class DiskKeySet implements KeySet {
  #keys: readonly LoadedKey[];
  #skipped: readonly string[];
  #jwks: { keys: readonly PublicJwk[] };
  #signature: string;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  readonly #delay: number;
  readonly #clock: Clock;

  private constructor(
    readonly dir: string,
    loaded: Loaded,
    options: DiskKeySetOptions,
  ) {
    this.#keys = loaded.keys;
    this.#skipped = loaded.skipped;
    this.#signature = loaded.signature;
    this.#jwks = publish(loaded.keys);
    this.#delay = options.publishBeforeUseMs ?? 0;
    this.#clock = options.clock ?? systemClock;
  }

  /** Loads every key in dir (generating the first one if asked to). Throws ConfigError. */
  static async load(dir: string, options: DiskKeySetOptions): Promise<DiskKeySet> {
    if (listKeyFiles(dir).length === 0) {
      if (!options.generateIfEmpty) throw ConfigError.single(dir, 'the key directory holds no keys (*.pem)');
      await generateKeyFile(dir, options.algorithm);
    }
    const loaded = await loadKeys(dir);
    // Every file removed while it was being read: no key to sign with.
    if (loaded.keys.length === 0) throw ConfigError.single(dir, 'the key directory holds no keys (*.pem)');
    return new DiskKeySet(dir, loaded, options);
  }

  signingKey(): SigningKey {
    const ready = this.#clock.now() - this.#delay;
    // #keys is newest first; the first one published long enough signs, else the oldest.
    return (this.#keys.find((k) => k.createdAt <= ready) ?? this.#keys[this.#keys.length - 1]!).signing;
  }

  jwks(): { keys: readonly PublicJwk[] } {
    return this.#jwks;
  }

  /**
   * The key files left out, one line each (`file: reason`): symbolic links to a missing file. A
   * Kubernetes Secret volume has such a link for a moment while the kubelet swaps in a version
   * of the Secret without that key, so a missing target counts as a removed key, not as a broken
   * folder. A folder where nothing else loads is refused all the same (see loadKeys).
   */
  skipped(): readonly string[] {
    return this.#skipped;
  }

  /** The keys, newest first, with what each is doing now. */
  list(): readonly (KeyFileInfo & { use: KeyUse })[] {
    const signing = this.signingKey().kid;
    return this.#keys.map(({ kid, file, createdAt, bits, alg }) => ({
      kid,
      file,
      createdAt,
      bits,
      alg,
      use: kid === signing ? 'signing' : createdAt > this.#clock.now() - this.#delay ? 'pending' : 'published',
    }));
  }

  /**
   * Re-reads the directory. A directory that no longer loads (no keys, a broken file, a folder
   * that cannot be read) is refused and the keys in use stay; returns the problem, or undefined
   * when the new set is in use. Never throws: whatever goes wrong is a refused reload.
   */
  async reload(): Promise<ConfigError | undefined> {
    try {
      const loaded = await loadKeys(this.dir);
      if (loaded.keys.length === 0) return ConfigError.single(this.dir, 'the key directory holds no keys (*.pem)');
      this.#keys = loaded.keys;
      this.#skipped = loaded.skipped;
      this.#jwks = publish(loaded.keys);
      this.#signature = loaded.signature;
      return undefined;
    } catch (err) {
      return asConfigError(this.dir, err);
    }
  }

  /**
   * Checks the directory every `intervalMs`, reloads when its files change, and reports each
   * reload, refused reload, and change of the signing key (a pending key's time has come).
   */
  watch(onEvent: (event: KeySetEvent) => void, intervalMs = 2000): void {
    if (this.#timer !== undefined) return;
    let signing = this.signingKey().kid;
    this.#timer = setInterval(() => {
      // One check at a time: a slow disk must not stack reloads up.
      if (this.#checking) return;
      this.#checking = true;
      // Nothing a check meets may end the process (the running server keeps its keys): a
      // failure of the listener itself is dropped here rather than left unhandled.
      this.#check(onEvent)
        .then(() => {
          const now = this.signingKey().kid;
          if (now !== signing) onEvent({ type: 'rotated', from: signing, to: now });
          signing = now;
        })
        .catch(() => undefined)
        .finally(() => (this.#checking = false));
    }, intervalMs);
    this.#timer.unref();
  }

  async #check(onEvent: (event: KeySetEvent) => void): Promise<void> {
    let signature: string;
    try {
      signature = directorySignature(this.dir);
    } catch (err) {
      // A folder that cannot be read (permissions, replaced by a file) is reported once, not at
      // every check, and reloaded as soon as it can be read again.
      const problem = asConfigError(this.dir, err);
      signature = `unreadable: ${problem.message}`;
      if (signature === this.#signature) return;
      this.#signature = signature;
      onEvent({ type: 'rejected', problem });
      return;
    }
    if (signature === this.#signature) return;
    this.#signature = signature;
    const problem = await this.reload();
    onEvent(problem ? { type: 'rejected', problem } : { type: 'reloaded', kids: this.#keys.map((k) => k.kid), skipped: [...this.#skipped] });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

interface Loaded {
  keys: LoadedKey[];
  skipped: string[];
  signature: string;
}

/** Anything thrown while loading keys, as the ConfigError a refused load reports. */
function asConfigError(dir: string, err: unknown): ConfigError {
  if (err instanceof ConfigError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return ConfigError.single(dir, `cannot load the key directory: ${code ?? (err as Error | undefined)?.message ?? String(err)}`);
}

async function loadKeys(dir: string): Promise<Loaded> {
  const signature = directorySignature(dir);
  const keys: LoadedKey[] = [];
  const dangling: { file: string; target: string }[] = [];
  for (const name of listKeyFiles(dir)) {
    const file = join(dir, name);
    const found = lookUp(file);
    // A file removed since the folder was listed is a removed key, as at the next check.
    if (found === 'gone') continue;
    if (found === 'file') keys.push(await loadKeyFile(file));
    else dangling.push({ file, target: found.danglingTo });
  }
  if (keys.length === 0 && dangling.length > 0) {
    // Not an empty folder to generate a key into: the key it should hold is missing.
    const [{ file, target }] = dangling as [{ file: string; target: string }];
    throw ConfigError.single(file, `is a symbolic link to a missing file (${target}), and no other key in the folder loads`);
  }
  const skipped = dangling.map(({ file, target }) => `${file}: skipped: a symbolic link to a missing file (${target})`);
  const kids = new Set<string>();
  for (const k of keys) {
    if (kids.has(k.kid)) throw ConfigError.single(k.file, `holds the same key as another file (kid ${k.kid})`);
    kids.add(k.kid);
  }
  keys.sort((a, b) => b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
  return { keys, skipped, signature };
}

/**
 * What is at file: something to read ('file', whose errors loadKeyFile reports), a symbolic link
 * to a missing file (and where it points), or nothing any more ('gone').
 */
function lookUp(file: string): 'file' | 'gone' | { danglingTo: string } {
  try {
    statSync(file);
    return 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return 'file';
    try {
      return lstatSync(file).isSymbolicLink() ? { danglingTo: readlinkSync(file) } : 'gone';
    } catch {
      return 'gone';
    }
  }
}

function publish(keys: readonly LoadedKey[]): { keys: readonly PublicJwk[] } {
  return Object.freeze({ keys: Object.freeze(keys.map((k) => k.publicJwk)) });
}

/**
 * Names, sizes and mtimes of the key files: changes when a key is added, removed or replaced.
 * A link to a missing file, or a file removed since the listing, is marked as such.
 */
function directorySignature(dir: string): string {
  return listKeyFiles(dir)
    .map((f) => {
      try {
        const st = statSync(join(dir, f));
        return `${f}:${st.size}:${st.mtimeMs}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${f}:missing`;
        throw ConfigError.single(join(dir, f), `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    })
    .join('|');
}

function listKeyFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pem') && !f.startsWith('.'))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ConfigError.single(dir, `cannot read the key directory: ${permissionProblem(err, 'read') ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Creates a new signing key in dir (RSA-2048, EC P-256 or Ed25519, by algorithm) and returns its kid. */
export async function generateKeyFile(dir: string, algorithm: SigningAlgorithm = 'RS256'): Promise<string> {
  const options = algorithm === 'RS256' ? { modulusLength: MIN_RSA_BITS } : algorithm === 'EdDSA' ? { crv: 'Ed25519' } : {};
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { ...options, extractable: true });
  const pem = await exportPKCS8(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
  const file = join(dir, `${kid}.pem`);
  const tmp = join(dir, `.${kid}.pem.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Written under a temporary name and renamed, so no reader ever sees half a key.
    writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const denied = permissionProblem(err, 'write');
    throw ConfigError.single(dir, denied === undefined ? `cannot write a new key into the key directory (${code})` : `cannot write a new key into the key directory: ${denied}`);
  }
  return kid;
}

async function loadKeyFile(file: string): Promise<LoadedKey> {
  let pem: string;
  let keyObject: KeyObject;
  let createdAt: number;
  try {
    pem = readFileSync(file, 'utf8');
    createdAt = statSync(file).mtimeMs;
    keyObject = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw ConfigError.single(file, code?.startsWith('E') && !code.startsWith('ERR_') ? `cannot read: ${permissionProblem(err, 'read') ?? code}` : 'is not a PEM private key');
  }
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) {
    throw ConfigError.single(file, 'must be a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); convert with `openssl pkcs8 -topk8 -nocrypt`');
  }
  const kind = keyKind(keyObject);
  if (kind === undefined) {
    throw ConfigError.single(file, `must be an RSA key of at least ${MIN_RSA_BITS} bits (RS256), an EC P-256 key (ES256) or an Ed25519 key (EdDSA)`);
  }
  const { alg, bits } = kind;
  // Only the public members: a JWK export of the public key never carries private parts.
  const jwk = await exportJWK(createPublicKey(keyObject));
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  // Node reads PEM that jose's importer does not (a leading blank line, a byte-order mark, the
  // "Bag Attributes" lines `openssl pkcs12 -nodes` writes before the key): jose is given the key
  // as Node read it, exported again as bare PKCS#8, so both agree on what the file holds.
  let key: CryptoKey;
  try {
    key = await importPKCS8(keyObject.export({ type: 'pkcs8', format: 'pem' }) as string, alg);
  } catch {
    throw ConfigError.single(file, `cannot be used to sign ${alg}`);
  }
  return {
    kid,
    file,
    bits,
    alg,
    createdAt,
    signing: Object.freeze({ kid, alg, key, createdAt }),
    publicJwk: Object.freeze({ ...jwk, kty: jwk.kty!, kid, alg, use: 'sig' as const }),
  };
}

function keyKind(key: KeyObject): { alg: SigningAlgorithm; bits: number } | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (details.modulusLength ?? 0) >= MIN_RSA_BITS ? { alg: 'RS256', bits: details.modulusLength! } : undefined;
    case 'ec':
      return details.namedCurve === 'prime256v1' ? { alg: 'ES256', bits: 256 } : undefined;
    case 'ed25519':
      return { alg: 'EdDSA', bits: 256 };
    default:
      return undefined;
  }
}
