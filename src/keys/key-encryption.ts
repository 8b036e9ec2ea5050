import { createCipheriv, createDecipheriv, createHash, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../shared/config-error.js';
import { permissionProblem } from '../shared/file-access.js';
import type { SigningKeyRecord } from '../shared/signing-key-records.js';
import { KEY_KINDS, keyKindOf, publicJwkOf } from './key-material.js';

/** A key-encryption key: 32 bytes for AES-256-GCM, the file it came from, and its id. */
export interface Kek {
  readonly file: string;
  /** A short hash of the key, stored with each record it seals: tells which key opens it. */
  readonly id: string;
  readonly key: Buffer;
}

const KEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Reads a key-encryption key: 32 random bytes in base64 (as `openssl rand -base64 32` writes
 * them), whitespace around them ignored. Throws a ConfigError naming the file and what is wrong,
 * never what the file holds.
 */
export function readKek(file: string): Kek {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a file' : (permissionProblem(err, 'read') ?? code ?? 'unreadable');
    throw ConfigError.single(file, `cannot read the key-encryption key: ${reason}`);
  }
  const trimmed = text.trim();
  const form = 'must hold 32 random bytes in base64, and nothing else (make one with: openssl rand -base64 32)';
  if (trimmed === '') throw ConfigError.single(file, `the key-encryption key file is empty: it ${form}`);
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) throw ConfigError.single(file, `the key-encryption key looks like hex (openssl rand -hex 32): the file ${form}`);
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) throw ConfigError.single(file, `the key-encryption key is not base64: the file ${form}`);
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== KEK_BYTES) throw ConfigError.single(file, `the key-encryption key is ${key.length} bytes long, not 32: the file ${form}`);
  return { file, key, id: kekId(key) };
}

/** The id stored with each sealed key: 12 characters of a SHA-256 of the key, which reveals nothing of it. */
export function kekId(key: Buffer): string {
  return createHash('sha256').update('tollgate key-encryption key id\n').update(key).digest('base64url').slice(0, 12);
}

/** What a sealed key is bound to: a seal moved to another kid or alg does not open. */
function associatedData(kid: string, alg: string): Buffer {
  return Buffer.from(JSON.stringify({ kid, alg }), 'utf8');
}

/** Seals a private key (PKCS#8 DER) under kek with a nonce of its own: base64url of nonce, ciphertext, tag. */
export function seal(kek: Kek, kid: string, alg: string, plaintext: Buffer): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(kid, alg));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
}

/** Opens a seal; undefined when kek is not the key that sealed it, or the seal was changed. */
export function unseal(kek: Kek, kid: string, alg: string, sealed: string): Buffer | undefined {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < NONCE_BYTES + TAG_BYTES + 1) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, bytes.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(kid, alg));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** When a key was made and from when it signs, ms since the epoch. */
export interface KeyTimes {
  createdAt: number;
  signsFrom: number;
}

/**
 * The record of a private key for the store: its public JWK in clear, the key itself (PKCS#8)
 * sealed under kek. Throws TypeError for a key tollgate does not sign with.
 */
export async function sealPrivateKey(kek: Kek, privateKey: KeyObject, times: KeyTimes): Promise<SigningKeyRecord> {
  const kind = keyKindOf(privateKey);
  if (kind === undefined) throw new TypeError(`must be ${KEY_KINDS}`);
  const jwk = await publicJwkOf(privateKey, kind.alg);
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    return {
      kid: jwk.kid,
      alg: kind.alg,
      createdAt: times.createdAt,
      signsFrom: times.signsFrom,
      publicJwk: JSON.stringify(jwk),
      sealed: seal(kek, jwk.kid, kind.alg, der),
      kekId: kek.id,
    };
  } finally {
    der.fill(0);
  }
}

/**
 * The key-encryption keys of keys.encryption_key_file and, while it changes,
 * keys.previous_encryption_key_file: the first seals, both open. Throws ConfigError.
 */
export function readKeks(current: string, previous?: string): [Kek, ...Kek[]] {
  const kek = readKek(current);
  if (previous === undefined) return [kek];
  const old = readKek(previous);
  return old.id === kek.id ? [kek] : [kek, old];
}
