import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { exportJWK, importPKCS8, type CryptoKey } from 'jose';
import { systemClock, type Clock } from '../shared/clock.js';
import { ConfigError } from '../shared/config-error.js';
import { permissionProblem } from '../shared/file-access.js';
import { directorySignature, isSecretVolume, listKeyFiles, writeKeyFile } from './key-dir.js';
import { formatTime, KeyFileError, keyId, MIN_RSA_BITS, parseKeyFile, serializeKeyFile, type ParsedKeyFile, type SigningAlgorithm } from './key-file.js';
import { pollKeys, signingKeyAt, type KeySet, type PublicJwk, type SigningKey } from './key-set.js';

export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './key-file.js';

/** A key file as found in the key directory. */
export interface KeyFileInfo {
  kid: string;
  file: string;
  /** When the key was made, ms since the epoch: its Tollgate-Created line, else the file's mtime. */
  createdAt: number;
  /** From when it may sign, ms since the epoch: its Tollgate-Signs-From line, else createdAt + publishBeforeUseMs. */
  signsFrom: number;
  /** Where the times come from: the file's header lines, or (an older plain PEM file) its mtime. */
  timesFrom: 'file' | 'mtime';
  /** The key's size: RSA modulus bits, or the curve's (256 for P-256 and Ed25519). */
  bits: number;
  alg: SigningAlgorithm;
}

interface LoadedKey extends KeyFileInfo {
  signing: SigningKey;
  publicJwk: PublicJwk;
  privateKey: KeyObject;
}

export interface DiskKeySetOptions {
  /** Generate a first key into an empty or missing directory. */
  generateIfEmpty: boolean;
  /**
   * How long a new key is published before it signs (ms), so that resource servers that cache
   * the JWKS see it before they meet a token it signed. It sets the Tollgate-Signs-From time of
   * a key generated here, and counts from the mtime of a plain PEM file that has no times.
   */
  publishBeforeUseMs?: number;
  /**
   * Write the times into plain PEM files that have none (their mtime as created), once, so
   * that they no longer depend on the mtime. Files in a Kubernetes Secret volume, symbolic
   * links, files of another user, and files of a folder that cannot be written are left alone
   * and reported by untimed().
   */
  addTimes?: boolean;
  /** What kind of key to generate when the directory is empty (RS256 by default). */
  algorithm?: SigningAlgorithm;
  clock?: Clock;
}

export type KeySetEvent =
  /**
   * skipped: a line per key file left out (a symbolic link to a missing file), as skipped() says.
   * untimed: a line per key file whose times still come from its mtime, said once per file and mtime.
   */
  | { type: 'reloaded'; kids: string[]; skipped: string[]; untimed: string[] }
  | { type: 'rejected'; problem: ConfigError }
  | { type: 'rotated'; from: string; to: string };

/** What a key is doing now. */
export type KeyUse = 'signing' | 'published' | 'pending';

/**
 * The signing keys in `keys.dir`: PKCS#8 PEM files, one key each, named `<kid>.pem` where the
 * kid is the key's RFC 7638 thumbprint. Each file carries the key's times in header lines
 * (key-file.ts), so a folder rewritten with fresh mtimes keeps every key's state. Every key is
 * published, so tokens signed by an older key keep verifying until they expire. Of the keys
 * whose signs-from time has come, the latest to come signs; until one has, the key whose time
 * is nearest goes on signing.
 */
export class DiskKeySet implements KeySet {
  #keys: readonly LoadedKey[];
  #skipped: readonly string[];
  #untimed: readonly string[];
  #jwks: { keys: readonly PublicJwk[] };
  #signature: string;
  #timer: NodeJS.Timeout | undefined;
  /** untimed() lines already reported, so that a reload reports each once. */
  readonly #told: Set<string>;
  readonly #options: DiskKeySetOptions;
  readonly #clock: Clock;

  private constructor(
    readonly dir: string,
    loaded: Loaded,
    options: DiskKeySetOptions,
  ) {
    this.#keys = loaded.keys;
    this.#skipped = loaded.skipped;
    this.#untimed = loaded.untimed;
    this.#told = new Set(loaded.untimed);
    this.#signature = loaded.signature;
    this.#jwks = publish(loaded.keys);
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Loads every key in dir (generating the first one if asked to). Throws ConfigError. */
  static async load(dir: string, options: DiskKeySetOptions): Promise<DiskKeySet> {
    const clock = options.clock ?? systemClock;
    if (listKeyFiles(dir).length === 0) {
      if (!options.generateIfEmpty) throw ConfigError.single(dir, 'the key directory holds no keys (*.pem)');
      await generateKeyFile(dir, options.algorithm, { now: clock.now(), publishBeforeUseMs: options.publishBeforeUseMs ?? 0 });
    }
    const loaded = await loadKeys(dir, options);
    // Every file removed while it was being read: no key to sign with.
    if (loaded.keys.length === 0) throw ConfigError.single(dir, 'the key directory holds no keys (*.pem)');
    return new DiskKeySet(dir, loaded, options);
  }

  signingKey(): SigningKey {
    // #keys is latest signs-from first.
    return signingKeyAt(this.#keys, this.#clock.now());
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

  /**
   * The key files whose times still come from their mtime, one line each (`file: reason`):
   * plain PEM files tollgate could not write the times into (see DiskKeySetOptions.addTimes).
   */
  untimed(): readonly string[] {
    return this.#untimed;
  }

  /** The keys, latest signs-from first, with what each is doing now. */
  list(): readonly (KeyFileInfo & { use: KeyUse })[] {
    const signing = this.signingKey().kid;
    const now = this.#clock.now();
    return this.#keys.map(({ kid, file, createdAt, signsFrom, timesFrom, bits, alg }) => ({
      kid,
      file,
      createdAt,
      signsFrom,
      timesFrom,
      bits,
      alg,
      use: kid === signing ? 'signing' : signsFrom > now ? 'pending' : 'published',
    }));
  }

  /**
   * Each key with its private key and times, latest signs-from first: what `keys export
   * --to-dir` writes. Times of an untimed file are those list() shows.
   */
  privateKeys(): readonly { kid: string; privateKey: KeyObject; created: number; signsFrom: number }[] {
    return this.#keys.map((k) => ({ kid: k.kid, privateKey: k.privateKey, created: k.createdAt, signsFrom: k.signsFrom }));
  }

  /**
   * Re-reads the directory. A directory that no longer loads (no keys, a broken file, a folder
   * that cannot be read) is refused and the keys in use stay; returns the problem, or undefined
   * when the new set is in use. Never throws: whatever goes wrong is a refused reload.
   */
  async reload(): Promise<ConfigError | undefined> {
    try {
      const loaded = await loadKeys(this.dir, this.#options);
      if (loaded.keys.length === 0) return ConfigError.single(this.dir, 'the key directory holds no keys (*.pem)');
      this.#keys = loaded.keys;
      this.#skipped = loaded.skipped;
      this.#untimed = loaded.untimed;
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
    this.#timer = pollKeys(this, () => this.#check(onEvent), onEvent, intervalMs);
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
    if (problem) {
      onEvent({ type: 'rejected', problem });
      return;
    }
    const untimed = this.#untimed.filter((line) => !this.#told.has(line));
    for (const line of untimed) this.#told.add(line);
    onEvent({ type: 'reloaded', kids: this.#keys.map((k) => k.kid), skipped: [...this.#skipped], untimed });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

interface Loaded {
  keys: LoadedKey[];
  skipped: string[];
  untimed: string[];
  signature: string;
}

/** Anything thrown while loading keys, as the ConfigError a refused load reports. */
function asConfigError(dir: string, err: unknown): ConfigError {
  if (err instanceof ConfigError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return ConfigError.single(dir, `cannot load the key directory: ${code ?? (err as Error | undefined)?.message ?? String(err)}`);
}

async function loadKeys(dir: string, options: DiskKeySetOptions): Promise<Loaded> {
  let signature = directorySignature(dir);
  const keys: LoadedKey[] = [];
  const dangling: { file: string; target: string }[] = [];
  for (const name of listKeyFiles(dir)) {
    const file = join(dir, name);
    const found = lookUp(file);
    // A file removed since the folder was listed is a removed key, as at the next check.
    if (found === 'gone') continue;
    if (found === 'file') keys.push(await loadKeyFile(file, options.publishBeforeUseMs ?? 0));
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
  const untimed: string[] = [];
  let added = false;
  for (const k of keys.filter((k) => k.timesFrom === 'mtime')) {
    const problem = options.addTimes ? addTimes(dir, k) : 'this reader only reads the folder';
    if (problem === undefined) {
      k.timesFrom = 'file';
      added = true;
    } else {
      untimed.push(`${k.file}: has no Tollgate-Created line, so its mtime (${formatTime(k.createdAt)}) counts as its creation time and changes whenever the file is rewritten; tollgate could not write its times into it: ${problem}`);
    }
  }
  // The files just rewritten are not a change to reload for.
  if (added) signature = directorySignature(dir);
  keys.sort((a, b) => b.signsFrom - a.signsFrom || b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
  return { keys, skipped, untimed, signature };
}

/**
 * Writes the times a plain PEM file is read with (its mtime as created) into it, keeping its
 * owner and mtime; returns why not when it may not or cannot.
 */
function addTimes(dir: string, key: LoadedKey): string | undefined {
  if (isSecretVolume(dir)) return 'the folder is a Kubernetes Secret volume';
  try {
    const st = lstatSync(key.file);
    if (st.isSymbolicLink()) return 'it is a symbolic link';
    const uid = process.getuid?.();
    // Rewriting another user's file would make it this user's, which that user may not read.
    if (uid !== undefined && uid !== 0 && st.uid !== uid) return `it belongs to uid ${st.uid}, and tollgate runs as uid ${uid}`;
    const text = serializeKeyFile({ privateKey: key.privateKey, created: key.createdAt, signsFrom: key.signsFrom });
    writeKeyFile(dir, basename(key.file), text, { replacing: { uid: st.uid, gid: st.gid, atime: st.atime, mtime: st.mtime } });
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return 'the folder is on a read-only file system';
    return permissionProblem(err, 'write') ?? code ?? (err as Error).message;
  }
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
 * Creates a new signing key in dir (RSA-2048, EC P-256 or Ed25519, by algorithm), with its
 * times (created now, signing from publishBeforeUseMs later), and returns its kid and times.
 */
export async function generateKeyFile(
  dir: string,
  algorithm: SigningAlgorithm = 'RS256',
  times: { now?: number; publishBeforeUseMs?: number } = {},
): Promise<{ kid: string; file: string; created: number; signsFrom: number }> {
  const privateKey = await newPrivateKey(algorithm);
  const kid = await keyId(privateKey);
  const created = times.now ?? Date.now();
  const signsFrom = created + (times.publishBeforeUseMs ?? 0);
  try {
    writeKeyFile(dir, `${kid}.pem`, serializeKeyFile({ privateKey, created, signsFrom }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const denied = permissionProblem(err, 'write');
    throw ConfigError.single(dir, denied === undefined ? `cannot write a new key into the key directory (${code})` : `cannot write a new key into the key directory: ${denied}`);
  }
  return { kid, file: join(dir, `${kid}.pem`), created, signsFrom };
}

const generate = promisify(generateKeyPair);

function newPrivateKey(algorithm: SigningAlgorithm): Promise<KeyObject> {
  const pair =
    algorithm === 'RS256'
      ? generate('rsa', { modulusLength: MIN_RSA_BITS })
      : algorithm === 'ES256'
        ? generate('ec', { namedCurve: 'P-256' })
        : generate('ed25519');
  return pair.then((p) => p.privateKey);
}

async function loadKeyFile(file: string, publishBeforeUseMs: number): Promise<LoadedKey> {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(file, 'utf8');
    // Whole ms, rounded as Stats.mtime is: utimes with that Date gives the same time back.
    mtime = Math.round(statSync(file).mtimeMs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw ConfigError.single(file, `cannot read: ${permissionProblem(err, 'read') ?? code}`);
  }
  let parsed: ParsedKeyFile;
  try {
    parsed = parseKeyFile(text);
  } catch (err) {
    if (err instanceof KeyFileError) throw ConfigError.single(file, err.message);
    throw err;
  }
  if (parsed.format !== 'pkcs8') {
    throw ConfigError.single(file, 'must be a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); convert with `openssl pkcs8 -topk8 -nocrypt`, or bring it in with `tollgate keys import`');
  }
  const { privateKey, alg, bits } = parsed;
  // A file with a created time depends on no mtime, even if it leaves signs-from to the config.
  const timed = parsed.created !== undefined;
  const createdAt = parsed.created ?? mtime;
  const signsFrom = parsed.signsFrom ?? createdAt + publishBeforeUseMs;
  // Only the public members: a JWK export of the public key never carries private parts.
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = await keyId(privateKey);
  // Node reads PEM that jose's importer does not (a leading blank line, a byte-order mark, the
  // "Bag Attributes" lines `openssl pkcs12 -nodes` writes before the key, tollgate's own
  // header lines): jose is given the key as Node read it, exported again as bare PKCS#8, so
  // both agree on what the file holds.
  let key: CryptoKey;
  try {
    key = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, alg);
  } catch {
    throw ConfigError.single(file, `cannot be used to sign ${alg}`);
  }
  return {
    kid,
    file,
    bits,
    alg,
    createdAt,
    signsFrom,
    timesFrom: timed ? 'file' : 'mtime',
    privateKey,
    signing: Object.freeze({ kid, alg, key, createdAt }),
    publicJwk: Object.freeze({ ...jwk, kty: jwk.kty!, kid, alg, use: 'sig' as const }),
  };
}
