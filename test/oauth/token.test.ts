import { createLocalJWKSet, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { StaticClientRegistry, type Client } from '../../src/clients/registry.js';
import { Limiter } from '../../src/crypto/limiter.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { DiskKeySet } from '../../src/keys/disk-key-set.js';
import { InvalidRequest, TemporarilyUnavailable, UnsupportedGrantType } from '../../src/oauth/errors.js';
import { Params } from '../../src/oauth/params.js';
import { issueToken, type TokenDeps } from '../../src/oauth/token.js';
import { tokenDigest } from '../../src/oauth/token-digest.js';
import { TokenIssuer } from '../../src/oauth/token-issuer.js';
import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import { basic, hashOf, tempDir, TestClock } from '../helpers.js';

// issueToken is the whole client credentials grant below HTTP: these check the order of its
// steps and that a token reaches the caller only once the store has it.

const SECRET = 'token-op-secret-0123456789abcdefghijklmn';
const ISSUER = 'https://auth.test';
let keys: DiskKeySet;
let deps: TokenDeps;
let argon2Runs = 0;

/** A store that refuses to record, as a store that is down does. */
class RefusingStore extends MemoryTokenStore {
  override async record(_token: TokenRecord): Promise<void> {
    throw new Error('connection refused');
  }
}

beforeAll(async () => {
  keys = await DiskKeySet.load(tempDir(), { generateIfEmpty: true, algorithm: 'RS256' });
  const clock = new TestClock();
  const svc: Client = {
    clientId: 'svc',
    secrets: [{ hash: await hashOf(SECRET) }],
    authMethods: ['client_secret_basic'],
    scopes: ['read', 'write'],
    defaultScopes: ['read'],
    audiences: ['https://api.test'],
    introspect: false,
    disabled: false,
  };
  const limiter = new Limiter(2, 256);
  const run = limiter.run.bind(limiter);
  limiter.run = (task) => {
    argon2Runs++;
    return run(task);
  };
  deps = {
    registry: new StaticClientRegistry([svc]),
    clock,
    verifier: new SecretVerifier({ limiter }),
    issuer: new TokenIssuer(ISSUER, keys, clock),
    policy: { defaultAudience: [], defaultTtl: 900 },
    store: new MemoryTokenStore(),
    dpop: { tokenEndpoint: `${ISSUER}/oauth2/token`, replay: new MemoryTokenStore(), clock },
  };
});

const request = (body: Record<string, string>, secret = SECRET) => ({ authorization: basic('svc', secret), params: Params.fromBody(body), ip: '192.0.2.1' });

describe('issueToken', () => {
  it('answers a signed token that the store has recorded under its jti, with its digest', async () => {
    const { response, client, claims } = await issueToken(request({ grant_type: 'client_credentials', scope: 'write' }), deps);
    expect(client.clientId).toBe('svc');
    expect(response).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'write' });
    const { payload } = await jwtVerify(response.access_token, createLocalJWKSet({ keys: [...keys.jwks().keys] }), { issuer: ISSUER, currentDate: new Date(deps.clock.now()) });
    expect(payload.jti).toBe(claims.jti);
    const record = await deps.store.find(claims.jti);
    expect(record).toMatchObject({ clientId: 'svc', scope: 'write', aud: ['https://api.test'], digest: tokenDigest(response.access_token) });
  });

  it('hands out no token the store could not record: 503 temporarily_unavailable instead', async () => {
    const refusing = { ...deps, store: new RefusingStore() };
    const attempt = issueToken(request({ grant_type: 'client_credentials' }), refusing);
    await expect(attempt).rejects.toBeInstanceOf(TemporarilyUnavailable);
    await expect(attempt).rejects.toMatchObject({ status: 503 });
  });

  it('refuses a missing or unsupported grant_type before any argon2 work', async () => {
    argon2Runs = 0;
    await expect(issueToken(request({}, 'not-the-secret'), deps)).rejects.toBeInstanceOf(InvalidRequest);
    await expect(issueToken(request({ grant_type: 'password' }, 'not-the-secret'), deps)).rejects.toBeInstanceOf(UnsupportedGrantType);
    expect(argon2Runs).toBe(0);
  });
});
