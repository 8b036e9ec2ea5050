import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/crypto/limiter.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { hashOf } from '../helpers.js';

// The steps client authentication runs one by one, with its throttle between the cache and argon2.

const NOW = Date.UTC(2026, 0, 1);
const SECRET = 'steps-secret-0123456789abcdefghijklmnopq';

function countingVerifier(): { verifier: SecretVerifier; runs: () => number } {
  let runs = 0;
  const limiter = new Limiter(2, 256);
  const run = limiter.run.bind(limiter);
  limiter.run = (task) => {
    runs++;
    return run(task);
  };
  return { verifier: new SecretVerifier({ limiter }), runs: () => runs };
}

describe('SecretVerifier steps', () => {
  it('cached answers only a pair already verified, and never runs argon2', async () => {
    const live = [{ hash: await hashOf(SECRET) }];
    const { verifier, runs } = countingVerifier();
    expect(verifier.cached('svc', SECRET, live, NOW)).toBeUndefined();
    expect(await verifier.verify('svc', SECRET, live, NOW)).toBe(live[0]);
    expect(verifier.cached('svc', SECRET, live, NOW)).toBe(live[0]);
    expect(verifier.cached('svc', SECRET, [], NOW)).toBeUndefined();
    expect(runs()).toBe(1);
  });

  it('verifyIfShared starts no argon2: it answers a verification under way, else the cache', async () => {
    const live = [{ hash: await hashOf(SECRET) }];
    const { verifier, runs } = countingVerifier();
    expect(await verifier.verifyIfShared('svc', SECRET, live, NOW)).toBeUndefined();
    expect(runs()).toBe(0);
    const running = verifier.verify('svc', SECRET, live, NOW);
    const shared = verifier.verifyIfShared('svc', SECRET, live, NOW);
    expect(await shared).toBe(live[0]);
    expect(await running).toBe(live[0]);
    expect(runs()).toBe(1);
    // Ended, and remembered: still no new work.
    expect(await verifier.verifyIfShared('svc', SECRET, live, NOW)).toBe(live[0]);
    expect(runs()).toBe(1);
  });
});
