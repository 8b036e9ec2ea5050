import { MAX_TTL } from '../config.js';
import { withClientRevocation, type TokenRecord, type TokenStore } from './token-store.js';

/** Token state in this process only: the reference adapter, for tests and throwaway runs. */
export class MemoryTokenStore implements TokenStore {
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #clientRevocations = new Map<string, number>();

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

  async revokeClient(clientId: string, at: number): Promise<void> {
    this.#clientRevocations.set(clientId, Math.max(at, this.#clientRevocations.get(clientId) ?? 0));
  }

  async purgeExpired(now: number): Promise<number> {
    let n = 0;
    for (const [jti, record] of this.#tokens) {
      if (record.exp * 1000 < now) {
        this.#tokens.delete(jti);
        n++;
      }
    }
    // A client-wide revocation older than the longest token lifetime can no longer match a live token.
    for (const [clientId, at] of this.#clientRevocations) {
      if (at < now - MAX_TTL * 1000) this.#clientRevocations.delete(clientId);
    }
    return n;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
