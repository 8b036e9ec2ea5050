import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8 } from 'jose';
import { ConfigError } from '../config-error.js';
import type { KeySet, PublicJwk, SigningKey } from './key-set.js';

const ALG = 'RS256';
const MIN_RSA_BITS = 2048;

/** A key file as found in the key directory. */
export interface KeyFileInfo {
  kid: string;
  file: string;
  /** When the file was written (its mtime), ms since the epoch: the newest key signs. */
  createdAt: number;
  bits: number;
}

interface LoadedKey extends KeyFileInfo {
  signing: SigningKey;
  publicJwk: PublicJwk;
}

/**
 * The signing keys in `keys.dir`: PKCS#8 PEM files, one key each, named `<kid>.pem` where the
 * kid is the key's RFC 7638 thumbprint. The newest key signs; all of them are published so that
 * tokens signed by an older key keep verifying until they expire.
 */
export class DiskKeySet implements KeySet {
  readonly #keys: readonly LoadedKey[];
  readonly #jwks: { keys: readonly PublicJwk[] };

  private constructor(keys: readonly LoadedKey[]) {
    this.#keys = keys;
    this.#jwks = Object.freeze({ keys: Object.freeze(keys.map((k) => k.publicJwk)) });
  }

  /**
   * Loads every key in dir. With `generateIfEmpty`, a missing or empty directory gets a new
   * RSA-2048 key first (the directory mode 0700, the file 0600).
   */
  static async load(dir: string, options: { generateIfEmpty: boolean }): Promise<DiskKeySet> {
    let files = listKeyFiles(dir);
    if (files.length === 0) {
      if (!options.generateIfEmpty) throw ConfigError.single(dir, 'the key directory holds no keys (*.pem)');
      await generateKeyFile(dir);
      files = listKeyFiles(dir);
    }
    const keys = await Promise.all(files.map((file) => loadKeyFile(join(dir, file))));
    const kids = new Set<string>();
    for (const k of keys) {
      if (kids.has(k.kid)) throw ConfigError.single(k.file, `holds the same key as another file (kid ${k.kid})`);
      kids.add(k.kid);
    }
    keys.sort((a, b) => b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
    return new DiskKeySet(keys);
  }

  signingKey(): SigningKey {
    return this.#keys[0]!.signing;
  }

  jwks(): { keys: readonly PublicJwk[] } {
    return this.#jwks;
  }

  /** The keys, newest (the signing key) first. */
  list(): readonly KeyFileInfo[] {
    return this.#keys.map(({ kid, file, createdAt, bits }) => ({ kid, file, createdAt, bits }));
  }
}

function listKeyFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pem') && !f.startsWith('.'))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ConfigError.single(dir, `cannot read the key directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Creates a new RSA-2048 signing key in dir and returns its kid. */
export async function generateKeyFile(dir: string): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { modulusLength: MIN_RSA_BITS, extractable: true });
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
    throw ConfigError.single(dir, `the key directory is empty and a new key cannot be written there (${code})`);
  }
  return kid;
}

async function loadKeyFile(file: string): Promise<LoadedKey> {
  let pem: string;
  let keyObject: KeyObject;
  try {
    pem = readFileSync(file, 'utf8');
    keyObject = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw ConfigError.single(file, code?.startsWith('E') && !code.startsWith('ERR_') ? `cannot read: ${code}` : 'is not a PEM private key');
  }
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) {
    throw ConfigError.single(file, 'must be a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); convert with `openssl pkcs8 -topk8 -nocrypt`');
  }
  const bits = keyObject.asymmetricKeyDetails?.modulusLength ?? 0;
  if (keyObject.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_BITS) {
    throw ConfigError.single(file, `must be an RSA key of at least ${MIN_RSA_BITS} bits for ${ALG}`);
  }
  const { kty, n, e } = await exportJWK(createPublicKey(keyObject));
  const kid = await calculateJwkThumbprint({ kty, n, e }, 'sha256');
  const key = await importPKCS8(pem, ALG);
  const createdAt = statSync(file).mtimeMs;
  return {
    kid,
    file,
    bits,
    createdAt,
    signing: Object.freeze({ kid, alg: ALG, key, createdAt }),
    publicJwk: Object.freeze({ kty: kty!, n, e, kid, alg: ALG, use: 'sig' as const }),
  };
}
