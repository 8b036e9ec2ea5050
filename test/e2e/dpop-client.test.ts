import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, createRemoteJWKSet, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer, type RunningServer } from '../../src/server/start-server.js';
import { client as registryClient, registryYaml } from '../builders.js';
import { writeFixture } from '../helpers.js';
// The resource server of docs/guides/dpop.md, as the guide shows it.
import { verifyDpopRequest } from '../../docs/examples/dpop-resource-server.mjs';

// A backend service with oauth4webapi's DPoP support, a resource server built from the guide's
// example, and a resource server introspecting with RFC 9701 JWT answers, against a real
// listening tollgate.

const SECRET = 'dpop-e2e-secret-0123456789abcdefghijklmnop';
const RS_SECRET = 'dpop-e2e-rs-secret-0123456789abcdefghijkl';
const API = 'https://orders.test';
let server: RunningServer;
let issuer: URL;
let as: oauth.AuthorizationServer;
let resourceServer: Server;
let resourceUrl: string;

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

const insecure = { [oauth.allowInsecureRequests]: true };

beforeAll(async () => {
  const port = await freePort();
  const fixture = writeFixture({
    config: `issuer: http://127.0.0.1:${port}
listen: { host: 127.0.0.1, port: ${port} }
keys: { dir: ./keys }
store: { kind: memory }
`,
    clients: await registryYaml([
      registryClient({ id: 'orders', secret: SECRET, scopes: ['orders:read'], audiences: [API], dpop_bound_access_tokens: true }),
      registryClient({ id: 'orders-api', secret: RS_SECRET, audiences: [API], introspect: true }),
    ]),
  });
  server = await startServer(loadConfig(fixture.configFile), createLogger('silent'));
  issuer = new URL(server.url);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }));

  // The resource server: the guide's check, answering 401 with the error code it names.
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
  const seenJtis = new Set<string>();
  const seen = async (key: string) => !seenJtis.has(key) && Boolean(seenJtis.add(key));
  resourceServer = createHttpServer((req, res) => {
    const url = `${resourceUrl}${req.url ?? '/'}`;
    verifyDpopRequest({ method: req.method, url, authorization: req.headers.authorization, dpop: req.headersDistinct.dpop }, { issuer: as.issuer, audience: API, jwks, seen }).then(
      (claims: { client_id: string }) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ caller: claims.client_id })),
      (err: Error) => res.writeHead(401, { 'www-authenticate': `DPoP error="${err.message.split(':')[0]}"` }).end(),
    );
  });
  await new Promise<void>((resolve) => resourceServer.listen(0, '127.0.0.1', resolve));
  resourceUrl = `http://127.0.0.1:${(resourceServer.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (resourceServer ? resourceServer.close(() => resolve()) : resolve()));
  await server?.close();
});

const client: oauth.Client = { client_id: 'orders' };

async function dpopToken(keyPair: Awaited<ReturnType<typeof oauth.generateKeyPair>>) {
  const DPoP = oauth.DPoP(client, keyPair);
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), { scope: 'orders:read' }, { ...insecure, DPoP });
  return { DPoP, result: await oauth.processClientCredentialsResponse(as, client, response) };
}

describe('DPoP with real client libraries', () => {
  it("gets a DPoP token with oauth4webapi's DPoP handle, which the guide's resource server accepts with a fresh proof", async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const { DPoP, result } = await dpopToken(keyPair);
    expect(result.token_type).toBe('dpop');
    const call = await oauth.protectedResourceRequest(result.access_token, 'GET', new URL(`${resourceUrl}/orders?page=2`), new Headers(), null, { ...insecure, DPoP });
    expect(call.status).toBe(200);
    expect(await call.json()).toEqual({ caller: 'orders' });
  });

  it("has the guide's resource server refuse the token with another key's proof, or as a Bearer token", async () => {
    const { result } = await dpopToken(await oauth.generateKeyPair('ES256'));
    const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const stolen = await oauth
      .protectedResourceRequest(result.access_token, 'GET', new URL(`${resourceUrl}/orders`), new Headers(), null, { ...insecure, DPoP: thief })
      .catch((err: unknown) => err);
    expect(stolen).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect(stolen).toMatchObject({ status: 401, cause: [{ scheme: 'dpop', parameters: { error: 'invalid_dpop_proof' } }] });
    const bearer = await fetch(`${resourceUrl}/orders`, { headers: { authorization: `Bearer ${result.access_token}` } });
    expect(bearer.status).toBe(401);
  });

  it('is refused a token without a proof when its registry entry requires DPoP', async () => {
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), {}, insecure);
    await expect(oauth.processClientCredentialsResponse(as, client, response)).rejects.toMatchObject({ error: 'invalid_request' });
  });

  it('answers introspection as a signed RFC 9701 JWT that oauth4webapi validates, with token_type DPoP and cnf.jkt', async () => {
    expect(as.introspection_signing_alg_values_supported).toEqual(['RS256']);
    const keyPair = await oauth.generateKeyPair('ES256');
    const { result } = await dpopToken(keyPair);
    const rs: oauth.Client = { client_id: 'orders-api' };
    const response = await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(RS_SECRET), result.access_token, { ...insecure, requestJwtResponse: true });
    expect(response.headers.get('content-type')).toBe('application/token-introspection+jwt');
    const answer = await oauth.processIntrospectionResponse(as, rs, response);
    expect(answer).toMatchObject({ active: true, token_type: 'DPoP', client_id: 'orders', cnf: { jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256') } });

    // A token from another issuer is inactive, signed all the same.
    const inactive = await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(RS_SECRET), 'not-a-token', { ...insecure, requestJwtResponse: true });
    expect(await oauth.processIntrospectionResponse(as, rs, inactive)).toMatchObject({ active: false });
  });
});

describe('the guide', () => {
  it('shows the resource server example exactly as tested', () => {
    const guide = readFileSync(new URL('../../docs/guides/dpop.md', import.meta.url), 'utf8');
    const example = readFileSync(new URL('../../docs/examples/dpop-resource-server.mjs', import.meta.url), 'utf8');
    expect(guide).toContain(example.trim());
  });
});
