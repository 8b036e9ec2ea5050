import { describe, expect, it } from 'vitest';
import { API, client, registryYaml } from '../builders.js';
import { buildTestApp } from '../helpers.js';

const SECRET = 'secret-a-0123456789abcdefghijklmnop';
const clients = () =>
  registryYaml([
    client({ id: 'a', secret: SECRET, scopes: ['z:write', 'a:read'], audiences: [API] }),
    client({ id: 'b', secret: SECRET, scopes: ['a:read', 'm:read'], audiences: [API] }),
  ]);

describe('GET /.well-known/oauth-authorization-server', () => {
  it('publishes RFC 8414 metadata built from the issuer, cacheable for a short time', async () => {
    const t = await buildTestApp({ clients: await clients() });
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.json()).toEqual({
      issuer: 'https://auth.test',
      token_endpoint: 'https://auth.test/oauth2/token',
      jwks_uri: 'https://auth.test/.well-known/jwks.json',
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'federated_jwt', 'spiffe_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      introspection_endpoint: 'https://auth.test/oauth2/introspect',
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'federated_jwt', 'spiffe_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      revocation_endpoint: 'https://auth.test/oauth2/revoke',
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'federated_jwt', 'spiffe_jwt'],
      revocation_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      // No client CA configured: no mutual TLS, so nothing is certificate-bound.
      tls_client_certificate_bound_access_tokens: false,
      dpop_signing_alg_values_supported: ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'PS256'],
      introspection_signing_alg_values_supported: ['RS256'],
      response_types_supported: [],
      scopes_supported: ['a:read', 'm:read', 'z:write'],
    });
    const head = await t.app.inject({ method: 'HEAD', url: '/.well-known/oauth-authorization-server' });
    expect(head.statusCode).toBe(200);
    const post = await t.app.inject({ method: 'POST', url: '/.well-known/oauth-authorization-server' });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('leaves scopes_supported out when publish_scopes is false, and honours max_age', async () => {
    const t = await buildTestApp({
      clients: await clients(),
      config: `issuer: https://auth.test/tenant-1
keys: { dir: ./keys }
metadata: { publish_scopes: false, max_age: 60 }
`,
    });
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    expect(res.json()).not.toHaveProperty('scopes_supported');
    expect(res.json().token_endpoint).toBe('https://auth.test/tenant-1/oauth2/token');
    expect(res.headers['cache-control']).toBe('public, max-age=60');
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('publishes only the public parts of the signing key', async () => {
    const t = await buildTestApp({ clients: await clients() });
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const { keys } = res.json();
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: t.keys.signingKey().kid, e: 'AQAB' });
    // A 2048-bit modulus is 256 bytes: 342 base64url characters.
    expect(keys[0].n).toHaveLength(342);
  });
});

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    const t = await buildTestApp({ clients: await clients() });
    const live = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
    expect(ready.headers['cache-control']).toBe('no-store');
  });
});
