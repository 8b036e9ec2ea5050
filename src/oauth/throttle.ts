import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { TokenStore } from '../store/token-store.js';
import { TooManyRequests } from './errors.js';
import { guardStore } from './store-guard.js';

export interface ThrottlePolicy {
  windowMs: number;
  /** Failed authentications of one client_id from one address per window. */
  clientFailures: number;
  /** Failed authentications from one address per window, whatever the client_id. */
  addressFailures: number;
}

/**
 * Limits failed client authentication (RFC 6749 §2.3.1, RFC 9700 §4.x brute force): counted in
 * the token store, so every instance sharing it shares the counts, and checked before any
 * argon2 work is spent. A client_id is counted per source address: a flood aimed at one client
 * from one place does not lock that client out of its other addresses.
 */
export class FailureThrottle {
  constructor(
    private readonly store: TokenStore,
    private readonly policy: ThrottlePolicy,
    private readonly clock: Clock,
  ) {}

  /** Throws TooManyRequests when either count is spent. */
  async check(clientId: string, ip: string): Promise<void> {
    const now = this.clock.now();
    const [client, address] = await guardStore('throttle', () => this.store.peekCounts([clientKey(clientId, ip), addressKey(ip)], now));
    if (client!.count >= this.policy.clientFailures) throw tooMany(client!.resetAt, now, 'client');
    if (address!.count >= this.policy.addressFailures) throw tooMany(address!.resetAt, now, 'address');
  }

  /** Counts one failed authentication. */
  async recordFailure(clientId: string, ip: string): Promise<void> {
    const now = this.clock.now();
    await guardStore('throttle', () =>
      Promise.all([this.store.countHit(clientKey(clientId, ip), this.policy.windowMs, now), this.store.countHit(addressKey(ip), this.policy.windowMs, now)]),
    );
  }
}

function tooMany(resetAt: number, now: number, scope: 'client' | 'address'): TooManyRequests {
  return new TooManyRequests(Math.max(1, Math.ceil((resetAt - now) / 1000)), scope);
}

// Client ids are hashed: a presented id can be anything up to the parameter limit, and is not
// necessarily a registered one.
function clientKey(clientId: string, ip: string): string {
  return `authfail:client:${createHash('sha256').update(clientId).digest('base64url')}:${ip}`;
}

function addressKey(ip: string): string {
  return `authfail:addr:${ip}`;
}
