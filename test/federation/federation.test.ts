import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { decodeJwt, UnsecuredJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksFetcher } from '../../src/clients/jwks-fetcher.js';
import { API } from '../builders.js';
import { buildTestApp, form, FORM, tempDir, TestClock, type TestApp } from '../helpers.js';
import { makePki, type Pki } from '../tls-fixtures.js';
import { githubActionsToken, hmacToken, IssuerServer, jwtSvid, kubernetesToken, signingKey, type Overrides, type SigningKey } from './issuers.js';

// Workload identity federation (CONTRACT §6): clients that authenticate with a token their
// platform gives them. The issuers are served on loopback over HTTPS by IssuerServer.

const ISSUER = 'https://auth.test';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWT_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';
const BILLING_SA = 'system:serviceaccount:payments:billing';
const GH_SUBJECT = 'repo:octo-org/octo-repo:environment:production';
const REPORTER = 'spiffe://example.org/ns/payments/sa/reporter';
const INVENTORY = 'spiffe://example.org/ns/shop/sa/inventory';

let pki: Pki;
const issuers = new IssuerServer();
const clock = new TestClock(Date.now());
let t: TestApp;
let k8sKeys: SigningKey[];
let ghKey: SigningKey;
let ciKey: SigningKey;
let svidKey: SigningKey;
let x509SvidKey: SigningKey;
let k8sIssuer: string;
let ghIssuer: string;
let ciIssuer: string;
let impostorIssuer: string;
let closedPort: number;

/** A loopback port nothing listens on: an issuer that cannot be reached. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function registry(extraIssuers: Record<string, unknown>[] = [], extraClients: Record<string, unknown>[] = []): string {
  return stringify(
    {
      trusted_issuers: [
        { name: 'prod-cluster', issuer: k8sIssuer, jwks_uri: `${issuers.origin}/k8s/openid/v1/jwks`, max_lifetime: '1h' },
        { name: 'github', issuer: ghIssuer },
        { name: 'ci', issuer: ciIssuer },
        { name: 'impostor', issuer: impostorIssuer },
        { name: 'down', issuer: `https://127.0.0.1:${closedPort}/oidc` },
        { name: 'spire', spiffe_trust_domain: 'example.org', jwks_uri: `${issuers.origin}/spire/bundle` },
        ...extraIssuers,
      ],
      clients: [
        { client_id: 'billing', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'prod-cluster', subject: BILLING_SA }, scopes: ['invoices:read'], audiences: [API] },
        { client_id: 'billing-batch', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'prod-cluster', subject: 'system:serviceaccount:payments:batch' }, audiences: [API] },
        {
          client_id: 'deploy',
          auth_methods: ['federated_jwt'],
          federated_identity: { issuer: 'github', subject: GH_SUBJECT, claims: { repository_id: '74', repository_owner_id: '65' } },
          scopes: ['deploy'],
          audiences: [API],
        },
        { client_id: 'ci-job', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'ci', subject: 'project:42:job' }, audiences: [API] },
        { client_id: 'fooled', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'impostor', subject: GH_SUBJECT }, audiences: [API] },
        { client_id: 'orphan', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'down', subject: 'job' }, audiences: [API] },
        { client_id: REPORTER, auth_methods: ['spiffe_jwt'], scopes: ['reports:read'], audiences: [API] },
        { client_id: 'inventory', auth_methods: ['spiffe_jwt'], spiffe_id: INVENTORY, audiences: [API] },
        ...extraClients,
      ],
    },
    { lineWidth: 0 },
  );
}

beforeAll(async () => {
  pki = makePki(tempDir());
  await issuers.start(pki);
  closedPort = await freePort();
  k8sKeys = [await signingKey('RS256', 'k8s-1')];
  ghKey = await signingKey('RS256', 'gh-1');
  ciKey = await signingKey('ES256', 'ci-1');
  svidKey = await signingKey('ES256', 'svid-1', 'jwt-svid');
  x509SvidKey = await signingKey('ES256', 'x509-1', 'x509-svid');
  // Kubernetes publishes its keys at the API server's /openid/v1/jwks.
  k8sIssuer = `${issuers.origin}/k8s`;
  issuers.documents.set('/k8s/openid/v1/jwks', () => ({ keys: k8sKeys.map((k) => ({ ...k.jwk, use: 'sig' })) }));
  ghIssuer = issuers.oidc('/github', () => [ghKey.jwk]);
  ciIssuer = issuers.oidc('/ci', () => [ciKey.jwk], { wellKnown: 'oauth-authorization-server' });
  // Its discovery document claims to be GitHub: its keys must not be taken for GitHub's.
  impostorIssuer = issuers.oidc('/impostor', () => [ghKey.jwk], { claimedIssuer: ghIssuer });
  issuers.documents.set('/spire/bundle', () => ({ keys: [x509SvidKey.jwk, svidKey.jwk], spiffe_sequence: 7, spiffe_refresh_hint: 300 }));

  t = await buildTestApp({
    config: `issuer: ${ISSUER}
keys: { dir: ./keys }
store: { kind: memory }
# These tests send many refused tokens from one address; the throttle has its own test below.
throttle: { client_failures: 1000, address_failures: 1000 }
`,
    clients: registry(),
    clock,
    deps: { jwksFetcher: new JwksFetcher({ ca: pki.pem('ca.pem'), now: () => clock.now() }) },
  });
});

afterAll(() => issuers.close());

const k8s = (overrides: Overrides = {}, key = k8sKeys[0]!, sa?: string) =>
  kubernetesToken({ issuer: k8sIssuer, audience: ISSUER, key, now: clock.now(), overrides, ...(sa === undefined ? {} : { serviceAccount: sa }) });
const github = (overrides: Overrides = {}, key = ghKey) => githubActionsToken({ issuer: ghIssuer, audience: ISSUER, key, now: clock.now(), overrides });
const svid = (spiffeId = REPORTER, overrides: Overrides = {}, key = svidKey) => jwtSvid({ spiffeId, audience: ISSUER, key, now: clock.now(), overrides });
const nowSeconds = () => Math.floor(clock.now() / 1000);

function present(assertion: string, clientId: string | undefined, type = JWT_BEARER, app = t) {
  return app.app.inject({
    method: 'POST',
    url: '/oauth2/token',
    headers: FORM,
    payload: form({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: assertion, ...(clientId === undefined ? {} : { client_id: clientId }) }),
  });
}

type Res = Awaited<ReturnType<typeof present>>;

function expect401(res: Res): void {
  expect(res.statusCode, res.body).toBe(401);
  expect(res.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
}

/** The reason the last refusal logged. */
function lastReason(app = t): string {
  return String(app.logs.events('client.auth_failed').at(-1)?.reason);
}

function expectToken(res: Res, clientId: string): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(200);
  const claims = decodeJwt((res.json() as { access_token: string }).access_token);
  expect(claims).toMatchObject({ sub: clientId, client_id: clientId });
  return claims;
}

describe('federated_jwt with a Kubernetes projected service account token', () => {
  it('gets a token for a token whose aud is an array and which lives exactly max_lifetime (1 h)', async () => {
    const token = await k8s();
    expect(decodeJwt(token)).toMatchObject({ aud: [ISSUER], 'kubernetes.io': { namespace: 'payments' } });
    expect(decodeJwt(token).exp! - decodeJwt(token).iat!).toBe(3600);
    expect(expectToken(await present(token, 'billing'), 'billing')).toMatchObject({ scope: 'invoices:read' });
    // The audit line names the trusted issuer and the workload.
    expect(t.logs.events('token.issued').at(-1)).toMatchObject({ client_id: 'billing', federated_issuer: 'prod-cluster', federated_subject: BILLING_SA });
  });

  it('takes the same token again until it expires: a pod presents its token many times', async () => {
    const token = await k8s();
    expectToken(await present(token, 'billing'), 'billing');
    expectToken(await present(token, 'billing'), 'billing');
  });

  it.each<[string, (now: number) => Overrides, RegExp]>([
    ['of another service account', () => ({ sub: 'system:serviceaccount:payments:intruder' }), /^federated_sub:/],
    ['from another issuer', () => ({ iss: ghIssuer }), /^federated_iss:/],
    ['for another audience', () => ({ aud: ['https://other.test'] }), /^federated_audience$/],
    ['for the token endpoint URL', () => ({ aud: [`${ISSUER}/oauth2/token`] }), /^federated_audience$/],
    ['for two audiences', () => ({ aud: [ISSUER, 'https://other.test'] }), /^federated_audience$/],
    ['that has expired', (now) => ({ iat: now - 3700, nbf: now - 3700, exp: now - 100 }), /^federated_expired$/],
    ['that lives a second longer than max_lifetime', (now) => ({ exp: now + 3601 }), /^federated_lifetime_too_long:3601s>3600s$/],
    ['without iat', () => ({ iat: undefined }), /^federated_no_iat$/],
    ['without exp', () => ({ exp: undefined }), /^federated_no_exp$/],
    ['issued in the future', (now) => ({ iat: now + 600, nbf: now + 600, exp: now + 1200 }), /^federated_iat_in_future$/],
    ['not valid yet', (now) => ({ nbf: now + 600 }), /^federated_claim_invalid:nbf$/],
  ])('refuses a token %s', async (_what, overrides, reason) => {
    const token = await k8s(overrides(nowSeconds()));
    expect401(await present(token, 'billing'));
    expect(lastReason()).toMatch(reason);
    // The token itself never reaches the log.
    expect(t.logs.text).not.toContain(token.split('.')[2]);
  });

  it('refuses alg none, HMAC, a key the issuer does not publish, and a forged signature', async () => {
    const now = nowSeconds();
    const claims = { iss: k8sIssuer, sub: BILLING_SA, aud: [ISSUER], iat: now, exp: now + 3600 };
    expect401(await present(new UnsecuredJWT(claims).encode(), 'billing'));
    expect(lastReason()).toBe('federated_alg_not_allowed');
    expect401(await present(hmacToken(claims, 'k8s-1'), 'billing'));
    expect(lastReason()).toBe('federated_alg_not_allowed');
    expect401(await present(await k8s({}, await signingKey('RS256', 'not-published')), 'billing'));
    expect(lastReason()).toBe('federated_unknown_key');
    // The kid of a published key, signed with another one.
    expect401(await present(await k8s({}, await signingKey('RS256', 'k8s-1')), 'billing'));
    expect(lastReason()).toBe('federated_bad_signature');
    expect401(await present('not.a.jwt', 'billing'));
  });

  it("refuses one workload's token for another workload's client, and a token without client_id", async () => {
    expect401(await present(await k8s(), 'billing-batch'));
    expect(lastReason()).toMatch(/^federated_sub:/);
    expect401(await present(await k8s(), undefined));
    expect401(await present(await k8s(), 'deploy'));
    expect(lastReason()).toMatch(/^federated_iss:/);
  });

  it('fetches the issuer\'s keys once for all its clients', async () => {
    clock.advance(61); // past the age at which a fetched set is fetched again
    const before = issuers.hits.get('/k8s/openid/v1/jwks') ?? 0;
    expectToken(await present(await k8s(), 'billing'), 'billing');
    expectToken(await present(await k8s({}, k8sKeys[0], 'batch'), 'billing-batch'), 'billing-batch');
    expect(issuers.hits.get('/k8s/openid/v1/jwks')).toBe(before + 1);
  });
});

describe('federated_jwt with a GitHub Actions OIDC token (discovery)', () => {
  it('gets a token through a real client library, its keys found by OpenID Connect discovery', async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const as: oauth.AuthorizationServer = { issuer: ISSUER, token_endpoint: `${address}/oauth2/token` };
    const jobToken = await github();
    // oauth4webapi has no federated method: its ClientAuth hook sends the job's token.
    const federated: oauth.ClientAuth = (_as, client, body) => {
      body.set('client_id', client.client_id);
      body.set('client_assertion_type', JWT_BEARER);
      body.set('client_assertion', jobToken);
    };
    const response = await oauth.clientCredentialsGrantRequest(as, { client_id: 'deploy' }, federated, { scope: 'deploy' }, { [oauth.allowInsecureRequests]: true });
    const result = await oauth.processClientCredentialsResponse(as, { client_id: 'deploy' }, response);
    expect(result.scope).toBe('deploy');
    expect(decodeJwt(result.access_token)).toMatchObject({ sub: 'deploy' });
    expect(issuers.hits.get('/github/.well-known/openid-configuration')).toBeGreaterThan(0);
    expect(t.logs.events('token.issued').at(-1)).toMatchObject({ client_id: 'deploy', federated_issuer: 'github', federated_subject: GH_SUBJECT });
  });

  it.each<[string, Overrides, RegExp]>([
    ['of a re-created repository with the same name', { repository_id: '99' }, /^federated_claim:repository_id$/],
    ['of another environment', { sub: 'repo:octo-org/octo-repo:environment:staging', environment: 'staging' }, /^federated_sub:/],
    ['of a pull request', { sub: 'repo:octo-org/octo-repo:pull_request' }, /^federated_sub:/],
    ['asked for another audience', { aud: 'https://github.com/octo-org' }, /^federated_audience$/],
  ])('refuses a job token %s', async (_what, overrides, reason) => {
    expect401(await present(await github(overrides), 'deploy'));
    expect(lastReason()).toMatch(reason);
  });

  it('refuses keys from a discovery document that names another issuer', async () => {
    expect401(await present(await github({ iss: impostorIssuer }), 'fooled'));
    expect(lastReason()).toMatch(/^federated_jwks_unavailable:discovery at .* names another issuer$/);
  });

  it('finds the keys by RFC 8414 metadata when there is no OpenID Connect discovery document', async () => {
    const now = nowSeconds();
    const token = await githubActionsToken({ issuer: ciIssuer, audience: ISSUER, key: ciKey, now: clock.now(), overrides: { sub: 'project:42:job', nbf: now, exp: now + 300 } });
    expectToken(await present(token, 'ci-job'), 'ci-job');
  });

  it('refuses, and keeps serving, when an issuer cannot be reached', async () => {
    const now = nowSeconds();
    const token = await githubActionsToken({ issuer: `https://127.0.0.1:${closedPort}/oidc`, audience: ISSUER, key: ghKey, now: clock.now(), overrides: { sub: 'job', nbf: now } });
    expect401(await present(token, 'orphan'));
    expect(lastReason()).toMatch(/^federated_jwks_unavailable:no discovery document/);
    expectToken(await present(await k8s(), 'billing'), 'billing');
  });
});

describe('spiffe_jwt with a SPIFFE JWT-SVID', () => {
  it('finds the client by the SVID\'s SPIFFE ID when the body has no client_id', async () => {
    expect(expectToken(await present(await svid(), undefined, JWT_SPIFFE), REPORTER)).toMatchObject({ scope: 'reports:read' });
    expect(t.logs.events('token.issued').at(-1)).toMatchObject({ client_id: REPORTER, federated_issuer: 'spire', federated_subject: REPORTER });
    expectToken(await present(await svid(INVENTORY), undefined, JWT_SPIFFE), 'inventory');
    expectToken(await present(await svid(INVENTORY), 'inventory', JWT_SPIFFE), 'inventory');
  });

  it('takes an SVID that carries an iss', async () => {
    expectToken(await present(await svid(REPORTER, { iss: 'https://spire.example.org' }), REPORTER, JWT_SPIFFE), REPORTER);
  });

  it.each<[string, () => Promise<{ token: string; clientId?: string }>, RegExp]>([
    ['signed with a bundle key meant for X.509-SVIDs', async () => ({ token: await svid(REPORTER, {}, x509SvidKey) }), /^svid_unknown_key$/],
    ['signed with a key not in the bundle', async () => ({ token: await svid(REPORTER, {}, await signingKey('ES256', 'svid-1', 'jwt-svid')) }), /^svid_bad_signature$/],
    ['of another trust domain', async () => ({ token: await svid('spiffe://evil.org/ns/payments/sa/reporter') }), /^unknown_client$/],
    ["of another workload, for this client's id", async () => ({ token: await svid(INVENTORY), clientId: REPORTER }), /^svid_sub:/],
    ['for another audience', async () => ({ token: await svid(REPORTER, { aud: ['https://other.test'] }) }), /^svid_audience$/],
    ['that has expired', async () => ({ token: await svid(REPORTER, { iat: nowSeconds() - 400, exp: nowSeconds() - 100 }) }), /^svid_expired$/],
    ['without iat', async () => ({ token: await svid(REPORTER, { iat: undefined }) }), /^svid_no_iat$/],
    ['longer-lived than 24 h (the default max_lifetime)', async () => ({ token: await svid(REPORTER, { exp: nowSeconds() + 86_401 }) }), /^svid_lifetime_too_long/],
  ])('refuses an SVID %s', async (_what, make, reason) => {
    const { token, clientId } = await make();
    expect401(await present(token, clientId, JWT_SPIFFE));
    expect(lastReason()).toMatch(reason);
  });

  it('refuses a JWT-SVID sent as a jwt-bearer assertion, and an HMAC one', async () => {
    expect401(await present(await svid(), REPORTER, JWT_BEARER));
    const now = nowSeconds();
    expect401(await present(hmacToken({ sub: REPORTER, aud: [ISSUER], iat: now, exp: now + 300 }, 'svid-1'), undefined, JWT_SPIFFE));
    expect(lastReason()).toBe('svid_alg_not_allowed');
  });
});

describe('introspection and revocation', () => {
  it('take a federated client\'s token as its authentication too', async () => {
    const issued = await present(await k8s(), 'billing');
    expectToken(issued, 'billing');
    const accessToken = (issued.json() as { access_token: string }).access_token;
    const auth = { client_id: 'billing', client_assertion_type: JWT_BEARER, client_assertion: await k8s() };
    const introspected = await t.app.inject({ method: 'POST', url: '/oauth2/introspect', headers: FORM, payload: form({ token: accessToken, ...auth }) });
    expect(introspected.json()).toMatchObject({ active: true, client_id: 'billing' });
    const revoked = await t.app.inject({ method: 'POST', url: '/oauth2/revoke', headers: FORM, payload: form({ token: accessToken, ...auth }) });
    expect(revoked.statusCode).toBe(200);
    const after = await t.app.inject({ method: 'POST', url: '/oauth2/introspect', headers: FORM, payload: form({ token: accessToken, ...auth }) });
    expect(after.json()).toEqual({ active: false });
  });
});

describe('registry reloads', () => {
  it('takes a new trusted issuer and client without a restart', async () => {
    const staging = await signingKey('ES256', 'staging-1');
    const stagingIssuer = issuers.oidc('/staging', () => [staging.jwk]);
    const token = await kubernetesToken({ issuer: stagingIssuer, audience: ISSUER, key: staging, now: clock.now() });
    expect401(await present(token, 'staging-billing'));
    writeFileSync(
      t.fixture.clientsFile,
      registry([{ name: 'staging', issuer: stagingIssuer, max_lifetime: '2h' }], [
        { client_id: 'staging-billing', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'staging', subject: BILLING_SA }, audiences: [API] },
      ]),
    );
    expect(t.registry.reload()).toBe(true);
    expectToken(await present(token, 'staging-billing'), 'staging-billing');
  });
});

describe('key rotation at the issuer, followed without a restart', () => {
  it('accepts a key the issuer adds, and stops accepting one it removes within about a minute', async () => {
    const old = k8sKeys[0]!;
    const added = await signingKey('RS256', 'k8s-2');
    expectToken(await present(await k8s({}, old), 'billing'), 'billing');
    // The cluster adds a key and signs new tokens with it: the unknown kid triggers a refetch
    // (once the fetcher's ten-second cooldown since its last fetch has passed).
    k8sKeys = [old, added];
    clock.advance(11);
    expectToken(await present(await k8s({}, added), 'billing'), 'billing');
    // It removes the old key: a token signed with it works until the cached set is a minute old.
    k8sKeys = [added];
    expectToken(await present(await k8s({}, old), 'billing'), 'billing');
    clock.advance(61);
    expect401(await present(await k8s({}, old), 'billing'));
    expect(lastReason()).toBe('federated_unknown_key');
    expectToken(await present(await k8s({}, added), 'billing'), 'billing');
  });
});

describe('an issuer whose key set stops answering', () => {
  it('keeps verifying with the last set fetched', async () => {
    const serve = issuers.documents.get('/k8s/openid/v1/jwks')!;
    expectToken(await present(await k8s(), 'billing'), 'billing');
    issuers.documents.delete('/k8s/openid/v1/jwks');
    try {
      clock.advance(61); // the set is due to be fetched again, and the fetch fails
      const before = issuers.hits.get('/k8s/openid/v1/jwks') ?? 0;
      expectToken(await present(await k8s(), 'billing'), 'billing');
      expect(issuers.hits.get('/k8s/openid/v1/jwks')).toBe(before + 1);
    } finally {
      issuers.documents.set('/k8s/openid/v1/jwks', serve);
    }
  });
});

describe('throttle', () => {
  it('counts refused federated tokens like other failures', async () => {
    const throttled = await buildTestApp({
      config: `issuer: ${ISSUER}
keys: { dir: ./keys }
store: { kind: memory }
throttle: { client_failures: 3, address_failures: 1000 }
`,
      clients: registry(),
      clock,
      deps: { jwksFetcher: new JwksFetcher({ ca: pki.pem('ca.pem'), now: () => clock.now() }) },
    });
    const wrong = await k8s({ sub: 'system:serviceaccount:payments:intruder' });
    for (let i = 0; i < 3; i++) expect401(await present(wrong, 'billing', JWT_BEARER, throttled));
    const refused = await present(await k8s(), 'billing', JWT_BEARER, throttled);
    expect(refused.statusCode).toBe(429);
    // Another client of the same issuer is not held back by billing's count.
    expectToken(await present(await k8s({}, k8sKeys[0], 'batch'), 'billing-batch', JWT_BEARER, throttled), 'billing-batch');
  });
});

describe('metadata', () => {
  it('lists federated_jwt and spiffe_jwt among the token endpoint auth methods', async () => {
    const res = await t.app.inject({ url: '/.well-known/oauth-authorization-server' });
    expect(res.json().token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['federated_jwt', 'spiffe_jwt', 'private_key_jwt']));
  });
});
