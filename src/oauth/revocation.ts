import type { Clock } from '../shared/clock.js';
import type { Client } from '../clients/registry.js';
import type { TokenRecords } from '../store/token-store.js';
import { UnauthorizedClient } from './errors.js';
import { guardStore } from './store-guard.js';
import { readPresentedToken, sameDigest, tokenDigest } from './token-digest.js';

export interface RevocationDeps {
  store: TokenRecords;
  clock: Clock;
}

export type RevocationOutcome = { revoked: true; jti: string } | { revoked: false; reason: 'malformed' | 'unknown' };

/**
 * RFC 7009 §2.1: revokes the caller's own token. An unknown or malformed token needs nothing
 * done and is no error (§2.2); a token of another client is refused and stays active.
 * Resolves only after the revocation is durable in the store.
 */
export async function revokeToken(token: string, caller: Client, deps: RevocationDeps): Promise<RevocationOutcome> {
  const presented = readPresentedToken(token);
  if (presented === undefined) return { revoked: false, reason: 'malformed' };
  const record = await guardStore('find', () => deps.store.find(presented.jti));
  // A token whose bytes differ from the issued one is not that token, whatever its jti says.
  if (record === undefined || !sameDigest(tokenDigest(token), record.digest)) return { revoked: false, reason: 'unknown' };
  if (record.clientId !== caller.clientId) {
    throw new UnauthorizedClient('the token was not issued to this client', `jti ${record.jti} belongs to another client`);
  }
  await guardStore('revoke', () => deps.store.revoke(record.jti, deps.clock.now()));
  return { revoked: true, jti: record.jti };
}
