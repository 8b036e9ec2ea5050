import type { Clock } from '../shared/clock.js';
import type { Client, ClientRegistry } from '../clients/registry.js';
import type { KeySet } from '../keys/key-set.js';
import type { TokenRecords } from '../store/token-store.js';
import { guardStore } from './store-guard.js';
import { readPresentedToken, sameDigest, tokenDigest } from './token-digest.js';

export interface IntrospectionDeps {
  store: TokenRecords;
  registry: ClientRegistry;
  keys: KeySet;
  clock: Clock;
}

export type IntrospectionResponse = { active: false } | ({ active: true; token_type: 'Bearer' | 'DPoP' } & Record<string, unknown>);

const INACTIVE = Object.freeze({ active: false as const });

/** Why a token is inactive, for the log only: RFC 7662 §2.2 answers every case the same way. */
export type InactiveReason = 'malformed' | 'unknown' | 'digest_mismatch' | 'revoked' | 'expired' | 'not_yet_valid' | 'key_retired' | 'client_gone' | 'client_disabled' | 'not_permitted';

/**
 * RFC 7662 §2.2: the state of a token as the calling client may see it. A token is active only
 * if this server issued exactly these bytes (its digest matches the record of its jti), it is
 * unexpired and unrevoked, its signing key is still published, its client still exists and is
 * enabled, and the caller is that client or one allowed to introspect any token.
 */
export async function introspect(
  token: string,
  caller: Client,
  deps: IntrospectionDeps,
): Promise<{ response: IntrospectionResponse; jti?: string; reason?: InactiveReason }> {
  const inactive = (reason: InactiveReason, jti?: string) => ({ response: INACTIVE, reason, jti });
  const presented = readPresentedToken(token);
  if (presented === undefined) return inactive('malformed');
  const { jti, claims } = presented;
  const record = await guardStore('find', () => deps.store.find(jti));
  if (record === undefined) return inactive('unknown', jti);
  if (!sameDigest(tokenDigest(token), record.digest)) return inactive('digest_mismatch', jti);
  if (record.revokedAt !== undefined) return inactive('revoked', jti);
  const now = deps.clock.now();
  if (record.exp * 1000 <= now) return inactive('expired', jti);
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now) return inactive('not_yet_valid', jti);
  // A key removed from the key directory takes the tokens it signed with it.
  if (!deps.keys.jwks().keys.some((k) => k.kid === presented.kid)) return inactive('key_retired', jti);
  const owner = deps.registry.get(record.clientId);
  if (owner === undefined) return inactive('client_gone', jti);
  if (owner.disabled) return inactive('client_disabled', jti);
  if (caller.clientId !== record.clientId && !caller.introspect) return inactive('not_permitted', jti);

  // The claims are the ones this server signed: the digest proves the bytes are unchanged.
  const response: IntrospectionResponse = {
    active: true,
    ...(record.scope === '' ? {} : { scope: record.scope }),
    client_id: record.clientId,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: record.exp,
    iat: record.iat,
    nbf: claims.nbf,
    jti,
    // RFC 9449 §6.2: a DPoP-bound token says so, and which key must sign the proofs that come
    // with it; RFC 8705 §3.2: a certificate-bound one, which certificate must present it.
    token_type: record.jkt === undefined ? 'Bearer' : 'DPoP',
    ...(record.cnf === undefined ? {} : { cnf: { 'x5t#S256': record.cnf } }),
    ...(record.jkt === undefined ? {} : { cnf: { jkt: record.jkt } }),
  };
  return { response, jti };
}
