import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { StaticClientRegistry, type Client } from '../../src/clients/registry.js';
import { JwksFetcher } from '../../src/clients/jwks-fetcher.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { authenticateClient, type ClientAuthDeps } from '../../src/oauth/client-auth.js';
import { InvalidClient, TooManyRequests } from '../../src/oauth/errors.js';
import { Params } from '../../src/oauth/params.js';
import { FailureThrottle } from '../../src/oauth/throttle.js';
import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import { basic, hashOf, TestClock } from '../helpers.js';

// authenticateClient picks one authenticator per form of credentials; these check, below the
// HTTP layer, that each keeps the failure throttle's semantics: a secret's attempt is counted
// before argon2 and given back on success (begin), an assertion's only once it has failed
// (check, then recordFailure).

const SECRET = 'client-auth-secret-0123456789abcdefghijk';
const ISSUER = 'https://auth.test';
const IP = '192.0.2.10';
let signingKey: CryptoKey;
let deps: ClientAuthDeps;
let clock: TestClock;

function client(clientId: string, fields: Partial<Client>): Client {
  return { clientId, secrets: [], authMethods: ['client_secret_basic'], scopes: [], defaultScopes: [], audiences: [], introspect: false, disabled: false, ...fields };
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1' };
  clock = new TestClock();
  const store = new MemoryTokenStore();
  deps = {
    registry: new StaticClientRegistry([
      client('svc', { secrets: [{ hash: await hashOf(SECRET) }] }),
      client('signer', { authMethods: ['private_key_jwt'], jwks: [jwk] }),
    ]),
    clock,
    verifier: new SecretVerifier(),
    throttle: new FailureThrottle(store, { windowMs: 60_000, clientFailures: 1, addressFailures: 100 }, clock),
    assertions: { issuer: ISSUER, fetcher: new JwksFetcher(), replay: store },
  };
});

const withSecret = (secret: string, ip: string) => authenticateClient({ authorization: basic('svc', secret), params: Params.fromBody({}), ip }, deps);

async function assertion(jti: string): Promise<string> {
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({ jti })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer('signer')
    .setSubject('signer')
    .setAudience(ISSUER)
    .setExpirationTime(now + 60)
    .sign(signingKey);
}

const withAssertion = (jwt: string, ip: string) =>
  authenticateClient(
    {
      authorization: undefined,
      params: Params.fromBody({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }),
      ip,
    },
    deps,
  );

describe('client authentication by method', () => {
  it('answers the client and the method it used, for a secret and for an assertion', async () => {
    await expect(withSecret(SECRET, '192.0.2.1')).resolves.toMatchObject({ client: { clientId: 'svc' }, method: 'client_secret_basic' });
    await expect(withAssertion(await assertion('a-1'), '192.0.2.1')).resolves.toMatchObject({ client: { clientId: 'signer' }, method: 'private_key_jwt' });
  });

  it('counts a secret attempt before argon2: of a burst of wrong secrets only the limit reaches the check', async () => {
    const results = await Promise.allSettled(['w1', 'w2', 'w3'].map((s) => withSecret(s, '192.0.2.2')));
    const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).constructor : undefined));
    expect(reasons.filter((r) => r === InvalidClient)).toHaveLength(1);
    expect(reasons.filter((r) => r === TooManyRequests)).toHaveLength(2);
  });

  it('gives a secret attempt back when it succeeds: right secrets never use up the count', async () => {
    for (let i = 0; i < 3; i++) await expect(withSecret(SECRET, IP)).resolves.toMatchObject({ method: 'client_secret_basic' });
    await expect(withSecret('wrong', IP)).rejects.toBeInstanceOf(InvalidClient);
    await expect(withSecret('wrong-again', IP)).rejects.toBeInstanceOf(TooManyRequests);
  });

  it('counts an assertion only once it has failed: a burst of good ones passes, a failed one spends the count', async () => {
    const burst = await Promise.all(['b-1', 'b-2', 'b-3'].map(async (jti) => withAssertion(await assertion(jti), '192.0.2.3')));
    expect(burst.map((r) => r.method)).toEqual(['private_key_jwt', 'private_key_jwt', 'private_key_jwt']);
    const replayed = await assertion('b-1');
    await expect(withAssertion(replayed, '192.0.2.3')).rejects.toMatchObject({ reason: 'assertion_replayed' });
    await expect(withAssertion(await assertion('b-4'), '192.0.2.3')).rejects.toBeInstanceOf(TooManyRequests);
  });
});
