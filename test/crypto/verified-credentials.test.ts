import { describe, expect, it } from 'vitest';
import type { ClientSecret } from '../../src/clients/registry.js';
import { Limiter, QueueFull } from '../../src/crypto/limiter.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { VerifiedCredentials } from '../../src/crypto/verified-credentials.js';
import { hashOf } from '../helpers.js';

const H1: ClientSecret = { hash: '$argon2id$v=19$m=19456,t=2,p=1$aaaaaaaaaaaaaaaaaaaaaa$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' };
const H2: ClientSecret = { hash: '$argon2id$v=19$m=19456,t=2,p=1$cccccccccccccccccccccc$ddddddddddddddddddddddddddddddddddddddddddd' };
const NOW = Date.UTC(2026, 0, 1);

describe('VerifiedCredentials', () => {
  it('remembers a verified pair, and only that exact pair', () => {
    const cache = new VerifiedCredentials();
    cache.remember('svc', 's3cret', H1, NOW);
    expect(cache.lookup('svc', 's3cret', [H1, H2], NOW + 1000)).toBe(H1);
    expect(cache.lookup('svc', 's3creT', [H1, H2], NOW)).toBeUndefined();
    expect(cache.lookup('svc2', 's3cret', [H1, H2], NOW)).toBeUndefined();
    // The id/secret boundary is part of the key: ("svc", "s3cret") is not ("svcs", "3cret").
    expect(cache.lookup('svcs', '3cret', [H1, H2], NOW)).toBeUndefined();
  });

  it('forgets a pair once its hash is no longer a live secret of the client', () => {
    const cache = new VerifiedCredentials();
    cache.remember('svc', 's3cret', H1, NOW);
    expect(cache.lookup('svc', 's3cret', [H2], NOW)).toBeUndefined();
    // And it stays forgotten even if the hash came back.
    expect(cache.lookup('svc', 's3cret', [H1], NOW)).toBeUndefined();
  });

  it('forgets a pair after its time, or when its secret expires sooner', () => {
    const cache = new VerifiedCredentials({ ttlMs: 60_000 });
    cache.remember('svc', 's3cret', H1, NOW);
    expect(cache.lookup('svc', 's3cret', [H1], NOW + 59_999)).toBe(H1);
    expect(cache.lookup('svc', 's3cret', [H1], NOW + 60_000)).toBeUndefined();
    const expiring = { ...H2, expiresAt: NOW + 10_000 };
    cache.remember('svc', 'other', expiring, NOW);
    expect(cache.lookup('svc', 'other', [expiring], NOW + 10_000)).toBeUndefined();
  });

  it('is bounded, dropping the least recently used first', () => {
    const cache = new VerifiedCredentials({ maxEntries: 2 });
    cache.remember('a', 's', H1, NOW);
    cache.remember('b', 's', H1, NOW);
    expect(cache.lookup('a', 's', [H1], NOW)).toBe(H1);
    cache.remember('c', 's', H1, NOW);
    expect(cache.size).toBe(2);
    expect(cache.lookup('b', 's', [H1], NOW)).toBeUndefined();
    expect(cache.lookup('a', 's', [H1], NOW)).toBe(H1);
    cache.clear();
    expect(cache.lookup('a', 's', [H1], NOW)).toBeUndefined();
  });
});

describe('Limiter', () => {
  it('runs at most `concurrency` tasks and refuses once the queue is full', async () => {
    const limiter = new Limiter(2, 1);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const task = () =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => releases.push(r));
        running--;
      });
    const a = task();
    const b = task();
    const c = task();
    await expect(task()).rejects.toBeInstanceOf(QueueFull);
    expect(limiter.queued).toBe(1);
    while (releases.length > 0 || limiter.queued > 0) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([a, b, c]);
    expect(peak).toBe(2);
  });

  it('frees the slot when a task throws', async () => {
    const limiter = new Limiter(1, 0);
    await expect(limiter.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.run(async () => 7)).resolves.toBe(7);
  });
});

describe('SecretVerifier', () => {
  it('verifies with argon2 once, then from the cache; never caches a failure', async () => {
    const secret = 'verifier-secret-0123456789abcdefghijklmn';
    const live = [{ hash: await hashOf(secret) }];
    const verifier = new SecretVerifier();
    expect(await verifier.check('svc', 'wrong', live, NOW)).toBeUndefined();
    expect(verifier.cache.size).toBe(0);
    expect(await verifier.check('svc', secret, live, NOW)).toBe(live[0]);
    expect(verifier.cache.size).toBe(1);
    expect(verifier.cache.lookup('svc', secret, live, NOW)).toBe(live[0]);
    expect(await verifier.check('svc', secret, [], NOW)).toBeUndefined();
  });
});

describe('SecretVerifier under a burst', () => {
  it('verifies a burst of identical credentials once, known client or not', async () => {
    const secret = 'burst-secret-0123456789abcdefghijklmnopq';
    const live = [{ hash: await hashOf(secret) }];
    let runs = 0;
    const counting = new Limiter(2, 256);
    const run = counting.run.bind(counting);
    counting.run = (task) => {
      runs++;
      return run(task);
    };
    const verifier = new SecretVerifier({ limiter: counting });
    const known = await Promise.all(Array.from({ length: 20 }, () => verifier.check('svc', secret, live, NOW)));
    expect(known.every((s) => s === live[0])).toBe(true);
    expect(runs).toBe(1);
    runs = 0;
    const unknown = await Promise.all(Array.from({ length: 20 }, () => verifier.check('ghost', secret, [], NOW)));
    expect(unknown.every((s) => s === undefined)).toBe(true);
    expect(runs).toBe(1);
  });
});
