import { createHash, createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import { NODE_JWS } from '../keys/jws.js';
import { epochSeconds, type Clock } from '../shared/clock.js';
import type { ReplayClaims } from '../store/token-store.js';
import type { DpopNonces } from './dpop-nonce.js';
import { InvalidDpopProof, UseDpopNonce } from './errors.js';
import { guardStore } from './store-guard.js';

// DPoP (RFC 9449): a client proves, with a JWT signed by a key it holds, that it is the one a
// token was issued to. At the token endpoint (§5) the proof's key is bound into the token as
// cnf.jkt; the resource server checks a fresh proof by the same key on every request (§7).

/**
 * Proof algorithms accepted (dpop_signing_alg_values_supported): asymmetric only (§4.3 point
 * 5), each one jose verifies. Ed25519 is the fully specified name of EdDSA over Ed25519 (RFC
 * 9864), which oauth4webapi sends for Ed25519 keys.
 */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'PS256'] as const;

/**
 * How far a proof's iat may be from now, either way (seconds): a proof is made just before its
 * request, so this only absorbs clock differences. A jti is remembered as long as its iat
 * stays acceptable, so a replay is refused for as long as the proof could otherwise pass.
 */
export const DPOP_IAT_WINDOW = 300;

/**
 * The longest DPoP header accepted (characters). An RSA 4096 proof is about 1.8 KB; 8 KiB
 * allows RSA keys up to about 12,000 bits and bounds what one request may make tollgate parse.
 */
export const MAX_DPOP_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

/** Private key members of RFC 7518 §6 (and the symmetric `k`): a proof's jwk holds none. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface DpopDeps {
  /** The endpoint URL clients are told about (metadata's token_endpoint): what htu must be. */
  tokenEndpoint: string;
  replay: ReplayClaims;
  clock: Clock;
  /** Server nonces (RFC 9449 §8), when `dpop.require_nonce` asks for them. */
  nonces?: DpopNonces | undefined;
}

/** A proof that passed every check but the jti's: claimDpopJti finishes it. */
export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key: the token's cnf.jkt. */
  jkt: string;
  jti: string;
  iat: number;
  /** The proof's nonce claim, as sent (RFC 9449 §4.2); checked only when nonces are required. */
  nonce: unknown;
}

/**
 * Checks a DPoP proof sent to the token endpoint (RFC 9449 §4.3), all but its jti's
 * uniqueness, which claimDpopJti records once the client has authenticated (so that nobody
 * unauthenticated can fill the store with claims). `headers` are the values of every DPoP
 * header the request carried. Throws InvalidDpopProof naming the failed check.
 */
export async function verifyDpopProof(headers: readonly string[], method: string, deps: DpopDeps): Promise<VerifiedProof> {
  if (headers.length !== 1) throw new InvalidDpopProof('header', 'must be sent in exactly one DPoP header');
  const proof = headers[0]!;
  if (proof.length > MAX_DPOP_PROOF_LENGTH) throw new InvalidDpopProof('size', `is longer than ${MAX_DPOP_PROOF_LENGTH} characters`);
  const parts = proof.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) throw new InvalidDpopProof('malformed', 'is not a well-formed JWT');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const { key, alg, jkt } = proofKey(headerPart);

  const signed = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, 'base64url');
  let valid = false;
  try {
    valid = verify(NODE_JWS[alg].hash, signed, { key, ...NODE_JWS[alg].options }, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new InvalidDpopProof('signature', 'signature does not verify with its jwk');
  const claims = decodeJson(payloadPart);
  if (claims === undefined) throw new InvalidDpopProof('malformed', 'is not a well-formed JWT');

  if (claims.htm !== method) throw new InvalidDpopProof('htm', `htm must be the request's method, ${method}`);
  if (typeof claims.htu !== 'string' || normalizeHtu(claims.htu) !== normalizeHtu(deps.tokenEndpoint)) {
    throw new InvalidDpopProof('htu', `htu must be the token endpoint, ${deps.tokenEndpoint}`);
  }
  const { iat, jti, exp, nbf } = claims;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('iat', 'must have an iat');
  const now = epochSeconds(deps.clock.now());
  if (Math.abs(now - iat) > DPOP_IAT_WINDOW) throw new InvalidDpopProof('iat', `iat must be within ${DPOP_IAT_WINDOW} seconds of the server's time`);
  // RFC 9449 needs neither; a proof that has them must honour them.
  if (exp !== undefined && (typeof exp !== 'number' || exp <= now)) throw new InvalidDpopProof('exp', 'has expired');
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + DPOP_IAT_WINDOW)) throw new InvalidDpopProof('nbf', 'is not valid yet (nbf)');
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) {
    throw new InvalidDpopProof('jti', `must have a jti of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  return { jkt, jti, iat, nonce: claims.nonce };
}

type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];

/** The key each algorithm needs; how node:crypto verifies it is NODE_JWS's. */
const ALGORITHMS: Record<DpopAlgorithm, { kty: string; crv?: readonly string[] }> = {
  ES256: { kty: 'EC', crv: ['P-256'] },
  ES384: { kty: 'EC', crv: ['P-384'] },
  ES512: { kty: 'EC', crv: ['P-521'] },
  EdDSA: { kty: 'OKP', crv: ['Ed25519', 'Ed448'] },
  Ed25519: { kty: 'OKP', crv: ['Ed25519'] },
  RS256: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
};

/** RFC 7638 §3.2: the members of each key type a thumbprint covers. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] };

interface ProofKey {
  key: KeyObject;
  alg: DpopAlgorithm;
  jkt: string;
}

// A client signs every proof with the same key, so its proofs share one header: the key read
// from it (and its thumbprint) is kept per header, and each later proof costs one signature
// verification. A header that fails is not kept: its error is thrown again from scratch.
const KEYS_KEPT = 1024;
const keysByHeader = new Map<string, ProofKey>();

function proofKey(headerPart: string): ProofKey {
  const kept = keysByHeader.get(headerPart);
  if (kept !== undefined) return kept;
  const read = readProofHeader(headerPart);
  if (keysByHeader.size >= KEYS_KEPT) keysByHeader.delete(keysByHeader.keys().next().value!);
  keysByHeader.set(headerPart, read);
  return read;
}

/** The header's checks (RFC 9449 §4.3 points 4 to 7 but the signature) and the key it carries. */
function readProofHeader(headerPart: string): ProofKey {
  const header = decodeJson(headerPart);
  if (header === undefined) throw new InvalidDpopProof('malformed', 'is not a well-formed JWT');
  if (header.typ !== 'dpop+jwt') throw new InvalidDpopProof('typ', 'must have typ dpop+jwt');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(DPOP_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new InvalidDpopProof('alg', `alg must be one of ${DPOP_ALGORITHMS.join(', ')}`);
  }
  // RFC 7515 §4.1.11: a critical extension tollgate does not know must not be ignored.
  if (header.crit !== undefined) throw new InvalidDpopProof('crit', 'has critical header parameters tollgate does not understand');
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk) || typeof jwk.kty !== 'string') {
    throw new InvalidDpopProof('jwk', 'must carry its public key as jwk');
  }
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw new InvalidDpopProof('jwk', 'jwk must be a public key, not a private or symmetric one');
  const wanted = ALGORITHMS[alg as DpopAlgorithm];
  const members = THUMBPRINT_MEMBERS[jwk.kty];
  const unusable = () => new InvalidDpopProof('jwk', `jwk is not a usable ${alg} public key`);
  if (jwk.kty !== wanted.kty || members === undefined || members.some((m) => typeof jwk[m] !== 'string')) throw unusable();
  if (wanted.crv !== undefined && !wanted.crv.includes(jwk.crv as string)) throw unusable();
  if (jwk.alg !== undefined && jwk.alg !== alg) throw unusable();
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    // A point off the curve, a malformed modulus.
    throw unusable();
  }
  if (wanted.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new InvalidDpopProof('jwk', 'jwk is an RSA key shorter than 2048 bits');
  // RFC 7638: the required members, in lexicographic order, with no whitespace.
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return { key, alg: alg as DpopAlgorithm, jkt: createHash('sha256').update(canonical).digest('base64url') };
}

/**
 * RFC 9449 §8: when nonces are required, a proof must carry a current one; otherwise the
 * answer is use_dpop_nonce with the nonce to use. Returns the nonce to hand out with the
 * answer (undefined when nonces are not in use).
 */
export async function checkDpopNonce(proof: VerifiedProof, deps: Pick<DpopDeps, 'nonces'>): Promise<string | undefined> {
  if (deps.nonces === undefined) return undefined;
  const current = await deps.nonces.current();
  if (proof.nonce === undefined) throw new UseDpopNonce(current, 'missing');
  if (!deps.nonces.accepts(proof.nonce)) throw new UseDpopNonce(current, 'stale_or_unknown');
  return current;
}

/**
 * Records the proof's jti (RFC 9449 §11.1), in the store every instance shares, for as long as
 * its iat is acceptable; a jti seen before is refused. Keyed by the proof's key too, so that
 * one key's jtis never collide with another's, and prefixed so that they never collide with
 * client assertions' (which begin with a digit).
 */
export async function claimDpopJti(proof: VerifiedProof, deps: Pick<DpopDeps, 'replay' | 'clock'>): Promise<void> {
  const key = `dpop:${proof.jkt}:${proof.jti}`;
  const until = (Math.ceil(proof.iat) + DPOP_IAT_WINDOW + 1) * 1000;
  // No fsync of its own: the token this proof gets is recorded without one too (SQLite's
  // synchronous=NORMAL survives a crash of the process, not always one of the machine), and
  // an fsync per token request would cost more than everything else DPoP does.
  if (!(await guardStore('claim_dpop_jti', () => deps.replay.claimOnce(key, until, deps.clock.now(), { fsync: false })))) {
    throw new InvalidDpopProof('jti', 'jti has been used before');
  }
}

/** A base64url JSON object, or undefined when it is not one. */
function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(part, 'base64url')));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * An http(s) URI without query and fragment, normalised as RFC 3986 §6.2.2 and §6.2.3 say:
 * scheme and host in lower case, the default port dropped, an empty path as "/", dot segments
 * removed (the WHATWG parser does these), percent-encodings in upper case and those of
 * unreserved characters decoded. Anything that is no http(s) URL normalises to undefined.
 */
export function normalizeHtu(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  const path = url.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
  const userinfo = url.username === '' && url.password === '' ? '' : `${url.username}${url.password === '' ? '' : `:${url.password}`}@`;
  return `${url.protocol}//${userinfo}${url.host}${path}`;
}
