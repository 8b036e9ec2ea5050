import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';

/** JWS algorithms tollgate signs with, each tied to one kind of key. */
export const SIGNING_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];
export const MIN_RSA_BITS = 2048;

/** How the key was written: PKCS#8, PKCS#1 (RSA), SEC1 (EC) PEM, or a JWK. */
export type KeyFormat = 'pkcs8' | 'pkcs1' | 'sec1' | 'jwk';

/** A private key as read from a key file, with the times written beside it, if any. */
export interface ParsedKeyFile {
  privateKey: KeyObject;
  alg: SigningAlgorithm;
  /** RSA modulus bits, or the curve's (256 for P-256 and Ed25519). */
  bits: number;
  format: KeyFormat;
  /** Tollgate-Created, ms since the epoch. */
  created?: number;
  /** Tollgate-Signs-From: from when the key may sign, ms since the epoch. */
  signsFrom?: number;
}

/**
 * Why a key file cannot be used. The message never holds key material, only what is wrong, so
 * callers may put it in an error line after the file's name.
 */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

const CREATED = 'Tollgate-Created';
const SIGNS_FROM = 'Tollgate-Signs-From';
const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,9})?(Z|[+-](\d\d):(\d\d))$/i;
const UNSUPPORTED = `must be an RSA key of at least ${MIN_RSA_BITS} bits (RS256), an EC P-256 key (ES256) or an Ed25519 key (EdDSA)`;

/**
 * Reads one private key: PEM (PKCS#8, PKCS#1 RSA or SEC1 EC), optionally after tollgate's
 * header lines (`Tollgate-Created: <RFC 3339>`, `Tollgate-Signs-From: <RFC 3339>`), or a private
 * JWK, or a JWK Set holding exactly one private key. Text before `-----BEGIN` other than those
 * headers is ignored, as OpenSSL ignores it. Throws KeyFileError.
 */
export function parseKeyFile(text: string): ParsedKeyFile {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trimStart().startsWith('{')) return { ...parseJwk(body), format: 'jwk' };
  const begin = body.indexOf('-----BEGIN ');
  if (begin < 0) throw new KeyFileError('is not a PEM private key');
  const times = parseHeaders(body.slice(0, begin));
  const pem = body.slice(begin);
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!);
  const keyBlocks = blocks.filter((b) => b !== 'EC PARAMETERS');
  if (keyBlocks.some((b) => b === 'ENCRYPTED PRIVATE KEY')) {
    throw new KeyFileError('is an encrypted private key; decrypt it first (openssl pkcs8 -in FILE -out PLAIN.pem)');
  }
  if (keyBlocks.length > 0 && keyBlocks.every((b) => /PUBLIC KEY|CERTIFICATE/.test(b))) {
    throw new KeyFileError('holds a public key only; tollgate needs the private key');
  }
  if (keyBlocks.filter((b) => b.endsWith('PRIVATE KEY')).length > 1) throw new KeyFileError('holds more than one private key; put one key in each file');
  const format: KeyFormat | undefined = keyBlocks.includes('PRIVATE KEY')
    ? 'pkcs8'
    : keyBlocks.includes('RSA PRIVATE KEY')
      ? 'pkcs1'
      : keyBlocks.includes('EC PRIVATE KEY')
        ? 'sec1'
        : undefined;
  if (format === undefined) throw new KeyFileError('is not a PEM private key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyFileError('is not a PEM private key');
  }
  return { privateKey, ...keyKind(privateKey), format, ...times };
}

/**
 * A key file tollgate writes: the two header lines, then the key as PKCS#8 PEM. OpenSSL and
 * Node read it as a plain PEM key (`openssl pkey -in FILE`).
 */
export function serializeKeyFile(key: { privateKey: KeyObject; created: number; signsFrom: number }): string {
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return `${CREATED}: ${formatTime(key.created)}\n${SIGNS_FROM}: ${formatTime(key.signsFrom)}\n${pem}`;
}

/** The key's kid: the RFC 7638 SHA-256 thumbprint of its public half. */
export async function keyId(privateKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(createPublicKey(privateKey)), 'sha256');
}

/** ms since the epoch as RFC 3339 in UTC, with milliseconds. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** An RFC 3339 date-time (with a zone) as ms since the epoch; undefined when it is not one. */
export function parseTime(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, , , zh, zm] = m.slice(1).map(Number) as number[];
  // Date.parse rolls 30 February over into March: each field is checked first (RFC 3339 §5.7).
  const daysInMonth = new Date(Date.UTC(y!, mo!, 0)).getUTCDate();
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth || h! > 23 || mi! > 59 || s! > 59 || (zh ?? 0) > 23 || (zm ?? 0) > 59) return undefined;
  const ms = Date.parse(text.toUpperCase());
  return Number.isNaN(ms) ? undefined : ms;
}

/** The algorithm and size of a private key tollgate can sign with. Throws KeyFileError. */
export function keyKind(key: KeyObject): { alg: SigningAlgorithm; bits: number } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details.modulusLength ?? 0) >= MIN_RSA_BITS) return { alg: 'RS256', bits: details.modulusLength! };
      break;
    case 'ec':
      if (details.namedCurve === 'prime256v1') return { alg: 'ES256', bits: 256 };
      break;
    case 'ed25519':
      return { alg: 'EdDSA', bits: 256 };
  }
  throw new KeyFileError(UNSUPPORTED);
}

function parseHeaders(head: string): { created?: number; signsFrom?: number } {
  const times: { created?: number; signsFrom?: number } = {};
  for (const line of head.split(/\r?\n/)) {
    const m = /^\s*(Tollgate-[A-Za-z-]*)\s*:\s*(.*?)\s*$/i.exec(line);
    if (!m) continue;
    const [, name, value] = m as unknown as [string, string, string];
    const field = name.toLowerCase() === CREATED.toLowerCase() ? 'created' : name.toLowerCase() === SIGNS_FROM.toLowerCase() ? 'signsFrom' : undefined;
    if (field === undefined) throw new KeyFileError(`has an unknown header line "${name}" (known: ${CREATED}, ${SIGNS_FROM})`);
    if (times[field] !== undefined) throw new KeyFileError(`has the header line ${name} twice`);
    const ms = parseTime(value);
    if (ms === undefined) throw new KeyFileError(`has a ${name} line that is not an RFC 3339 time such as 2026-01-31T12:00:00Z`);
    times[field] = ms;
  }
  return times;
}

function parseJwk(text: string): { privateKey: KeyObject; alg: SigningAlgorithm; bits: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KeyFileError('is neither a PEM private key nor valid JSON (a JWK or JWK Set)');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KeyFileError('is not a JWK or JWK Set');
  let jwk: Record<string, unknown>;
  if ('keys' in doc) {
    const keys = (doc as { keys: unknown }).keys;
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'object' || k === null || Array.isArray(k))) {
      throw new KeyFileError('is a JWK Set whose "keys" is not a list of JWKs');
    }
    const privates = (keys as Record<string, unknown>[]).filter((k) => 'd' in k || k.kty === 'oct');
    if (privates.length === 0) {
      throw new KeyFileError(keys.length === 0 ? 'is an empty JWK Set' : 'is a JWK Set of public keys only; tollgate needs the private key');
    }
    if (privates.length > 1) throw new KeyFileError(`is a JWK Set with ${privates.length} private keys; import one key at a time`);
    jwk = privates[0]!;
  } else {
    jwk = doc as Record<string, unknown>;
  }
  if (jwk.kty === 'oct') throw new KeyFileError('is a symmetric key (kty "oct"); tollgate signs with RSA, EC P-256 or Ed25519 keys');
  if (!('d' in jwk)) throw new KeyFileError('is a public JWK only; tollgate needs the private key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    throw new KeyFileError(typeof jwk.kty === 'string' && ['RSA', 'EC', 'OKP'].includes(jwk.kty) ? 'is not a usable private JWK' : UNSUPPORTED);
  }
  return { privateKey, ...keyKind(privateKey) };
}
