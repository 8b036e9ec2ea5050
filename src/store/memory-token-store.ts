import { MAX_TTL } from '../shared/limits.js';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';
import { revokedByClient, withClientRevocation, type Counter, type CounterLimit, type Reservation, type ReservedHit, type TokenRecord, type TokenStore } from './token-store.js';

/** Token state in this process only: the reference adapter, for tests and throwaway runs. */
export class MemoryTokenStore implements TokenStore {
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #clientRevocations = new Map<string, number>();
  readonly #claims = new Map<string, number>();
  readonly #counters = new Map<string, Counter>();
  readonly #signingKeys = new Map<string, SigningKeyRecord>();
  #keyGeneration = 0;

  async record(token: TokenRecord): Promise<void> {
    if (this.#tokens.has(token.jti)) throw new Error('duplicate jti');
    this.#tokens.set(token.jti, { ...token, aud: [...token.aud] });
  }

  async find(jti: string): Promise<TokenRecord | undefined> {
    const record = this.#tokens.get(jti);
    return record && withClientRevocation(record, this.#clientRevocations.get(record.clientId));
  }

  async revoke(jti: string, at: number): Promise<boolean> {
    const record = this.#tokens.get(jti);
    if (record === undefined) return false;
    if (record.revokedAt === undefined) this.#tokens.set(jti, { ...record, revokedAt: at });
    return true;
  }

  async revokeClient(clientId: string, at: number): Promise<number> {
    const before = this.#clientRevocations.get(clientId);
    let revoked = 0;
    for (const t of this.#tokens.values()) {
      const live = t.exp * 1000 > at && t.revokedAt === undefined && !revokedByClient(t.iat, before);
      if (t.clientId === clientId && live && revokedByClient(t.iat, at)) revoked++;
    }
    this.#clientRevocations.set(clientId, Math.max(at, before ?? 0));
    return revoked;
  }

  async purgeExpired(now: number): Promise<number> {
    let n = 0;
    for (const [jti, record] of this.#tokens) {
      if (record.exp * 1000 < now) {
        this.#tokens.delete(jti);
        n++;
      }
    }
    for (const [key, until] of this.#claims) if (until < now) this.#claims.delete(key);
    for (const [key, c] of this.#counters) if (c.resetAt <= now) this.#counters.delete(key);
    // A client-wide revocation older than the longest token lifetime can no longer match a live token.
    for (const [clientId, at] of this.#clientRevocations) {
      if (at < now - MAX_TTL * 1000) this.#clientRevocations.delete(clientId);
    }
    return n;
  }

  async claimOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    const until = this.#claims.get(key);
    if (until !== undefined && until > now) return false;
    this.#claims.set(key, expiresAt);
    return true;
  }

  async reserveHits(limits: readonly CounterLimit[], windowMs: number, now: number): Promise<Reservation> {
    const current = limits.map(({ key }) => this.#live(key, now));
    const full = limits.findIndex(({ limit }, i) => current[i]!.count >= limit);
    if (full >= 0) return { granted: false, full, counter: { ...current[full]! } };
    const counters = limits.map(({ key }, i) => {
      const c = current[i]!;
      const next = c.count > 0 ? { count: c.count + 1, resetAt: c.resetAt } : { count: 1, resetAt: now + windowMs };
      this.#counters.set(key, next);
      return { ...next };
    });
    return { granted: true, counters };
  }

  async peekCounts(keys: readonly string[], now: number): Promise<Counter[]> {
    return keys.map((key) => ({ ...this.#live(key, now) }));
  }

  async releaseHits(hits: readonly ReservedHit[]): Promise<void> {
    for (const { key, resetAt } of hits) {
      const c = this.#counters.get(key);
      if (c !== undefined && c.resetAt === resetAt && c.count > 0) this.#counters.set(key, { count: c.count - 1, resetAt });
    }
  }

  #live(key: string, now: number): Counter {
    const c = this.#counters.get(key);
    return c !== undefined && c.resetAt > now ? c : { count: 0, resetAt: 0 };
  }

  async listSigningKeys(): Promise<SigningKeyList> {
    const keys = [...this.#signingKeys.values()].sort((a, b) => a.createdAt - b.createdAt || a.kid.localeCompare(b.kid));
    return { generation: this.#keyGeneration, keys };
  }

  async signingKeyGeneration(): Promise<number> {
    return this.#keyGeneration;
  }

  async addSigningKey(record: SigningKeyRecord, options: { onlyIfNone?: boolean } = {}): Promise<boolean> {
    if (this.#signingKeys.has(record.kid) || (options.onlyIfNone === true && this.#signingKeys.size > 0)) return false;
    this.#signingKeys.set(record.kid, { ...record });
    this.#keyGeneration++;
    return true;
  }

  async removeSigningKey(kid: string): Promise<boolean> {
    if (!this.#signingKeys.delete(kid)) return false;
    this.#keyGeneration++;
    return true;
  }

  async resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    if (generation !== this.#keyGeneration) return false;
    for (const { kid, sealed, kekId } of reseals) {
      const record = this.#signingKeys.get(kid);
      if (record !== undefined) this.#signingKeys.set(kid, { ...record, sealed, kekId });
    }
    this.#keyGeneration++;
    return true;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
