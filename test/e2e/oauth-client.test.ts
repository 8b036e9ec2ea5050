import { createServer } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startServer, type RunningServer } from '../../src/server/start-server.js';
import { createLogger } from '../../src/server/log.js';
import { client as registryClient, registryYaml } from '../builders.js';
import { writeFixture } from '../helpers.js';

// A backend service with a certified OAuth client library, and a resource server with jose,
// against a real listening tollgate.

const SECRET = 'e2e-secret-0123456789abcdefghijklmnopqrstu';
let server: RunningServer;
let issuer: URL;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const port = await freePort();
  const fixture = writeFixture({
    config: `issuer: http://127.0.0.1:${port}
listen: { host: 127.0.0.1, port: ${port} }
keys: { dir: ./keys }
store: { kind: memory }
`,
    clients: await registryYaml([
      registryClient({ id: 'billing', secret: SECRET, scopes: ['invoices:read', 'invoices:write'], default_scopes: ['invoices:read'], audiences: ['https://invoices.test'] }),
    ]),
  });
  server = await startServer(loadConfig(fixture.configFile), createLogger('silent'));
  issuer = new URL(server.url);
});

afterAll(() => server?.close());

const client: oauth.Client = { client_id: 'billing' };
const insecure = { [oauth.allowInsecureRequests]: true };

async function discover(): Promise<oauth.AuthorizationServer> {
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }));
}

async function verifyAtResourceServer(as: oauth.AuthorizationServer, accessToken: string) {
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
  return jwtVerify(accessToken, jwks, { issuer: as.issuer, audience: 'https://invoices.test', typ: 'at+jwt', algorithms: ['RS256'] });
}

describe('a real OAuth client library', () => {
  it.each([
    ['ClientSecretBasic', oauth.ClientSecretBasic(SECRET)],
    ['ClientSecretPost', oauth.ClientSecretPost(SECRET)],
  ])('gets a token with %s that a resource server verifies against the JWKS', async (_name, auth) => {
    const as = await discover();
    expect(as.token_endpoint).toBe(`${issuer.origin}/oauth2/token`);
    const response = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'invoices:write' }, insecure);
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    expect(result.token_type).toBe('bearer');
    expect(result.scope).toBe('invoices:write');
    expect(result.expires_in).toBe(900);

    const { payload, protectedHeader } = await verifyAtResourceServer(as, result.access_token);
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ iss: issuer.href.replace(/\/$/, ''), sub: 'billing', client_id: 'billing', scope: 'invoices:write' });
  });

  it('surfaces tollgate errors as OAuth errors in the client library', async () => {
    const as = await discover();
    const badSecret = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('wrong'), {}, insecure);
    // A 401 with a WWW-Authenticate challenge, which the library reports as such.
    const err = await oauth.processClientCredentialsResponse(as, client, badSecret).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = err as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]).toMatchObject({ scheme: 'basic', parameters: { realm: 'tollgate' } });
    expect(await challenge.response.json()).toMatchObject({ error: 'invalid_client' });
    const badScope = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), { scope: 'admin' }, insecure);
    await expect(oauth.processClientCredentialsResponse(as, client, badScope)).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('gives a token a resource server for another audience refuses', async () => {
    const as = await discover();
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), {}, insecure);
    const { access_token } = await oauth.processClientCredentialsResponse(as, client, response);
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    await expect(jwtVerify(access_token, jwks, { issuer: as.issuer, audience: 'https://other.test' })).rejects.toThrow(/aud/);
  });
});
