import { createHash, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer, type RunningServer } from '../../src/server/start-server.js';
import { API, client, registryYaml } from '../builders.js';
import { buildTestApp, form, FORM, tempDir, writeFixture } from '../helpers.js';
import { makeCertificate, makePki, type Pki } from '../tls-fixtures.js';

// Mutual TLS client authentication and certificate-bound tokens (RFC 8705), over real TLS.

const RS_SECRET = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
let pki: Pki;
let server: RunningServer;
let url: URL;

async function registry(): Promise<string> {
  const selfSigned = new X509Certificate(pki.pem('selfsigned.pem'));
  const tls = (id: string, fields: Record<string, unknown>) => client({ id, auth_methods: ['tls_client_auth'], ...fields, audiences: [API] });
  return registryYaml([
    tls('edge-proxy', { tls_client_auth_subject_dn: 'CN=edge-proxy,O=Example' }),
    tls('edge-by-san', { tls_client_auth_san_dns: 'edge.internal' }),
    client({ id: 'batch-runner', auth_methods: ['self_signed_tls_client_auth'], jwks: { keys: [await exportJWK(selfSigned.publicKey)] }, audiences: [API] }),
    tls('smith', { tls_client_auth_subject_dn: 'CN=Smith\\, John,O=Ex' }),
    tls('multi-rdn', { tls_client_auth_subject_dn: 'OU=x+CN=multi,O=Ex' }),
    tls('by-ipv6', { tls_client_auth_san_ip: '2001:db8::1' }),
    tls('by-uri', { tls_client_auth_san_uri: 'spiffe://example.org/ns/prod/sa/edge' }),
    tls('by-email', { tls_client_auth_san_email: 'edge@EXAMPLE.org' }),
    client({ id: 'rs', secret: RS_SECRET, audiences: [API], introspect: true }),
  ]);
}

beforeAll(async () => {
  pki = makePki(tempDir());
  makeCertificate(pki, 'smith', { subj: '/O=Ex/CN=Smith\\, John' });
  makeCertificate(pki, 'multi', { subj: '/O=Ex/OU=x+CN=multi' });
  makeCertificate(pki, 'sans', { subj: '/CN=sans', san: 'IP:2001:db8::1,URI:spiffe://example.org/ns/prod/sa/edge,email:edge@example.org' });
  const fixture = writeFixture({
    config: `issuer: https://127.0.0.1
listen:
  host: 127.0.0.1
  port: 0
  tls: { cert: ${pki.file('server.pem')}, key: ${pki.file('server.key')}, client_ca: ${pki.file('ca.pem')} }
keys: { dir: ./keys }
store: { kind: memory }
`,
    clients: await registry(),
  });
  server = await startServer(loadConfig(fixture.configFile), createLogger('silent'));
  url = new URL(server.url);
});

afterAll(() => server?.close());

const thumbprint = (pemName: string) => createHash('sha256').update(new X509Certificate(pki.pem(pemName)).raw).digest('base64url');

function post(path: string, body: Record<string, string>, cert?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: url.port,
        path,
        method: 'POST',
        ca: pki.pem('ca.pem'),
        ...(cert ? { cert: pki.pem(`${cert}.pem`), key: pki.pem(`${cert}.key`) } : {}),
        headers: { ...FORM, ...headers },
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(data || '{}') as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(form(body));
  });
}

const grant = (clientId: string) => ({ grant_type: 'client_credentials', client_id: clientId });

describe('mutual TLS', () => {
  it('issues a certificate-bound token to a tls_client_auth client, matched by subject DN or SAN', async () => {
    for (const clientId of ['edge-proxy', 'edge-by-san']) {
      const res = await post('/oauth2/token', grant(clientId), 'edge');
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      const claims = JSON.parse(Buffer.from(String(res.json.access_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(claims.cnf).toEqual({ 'x5t#S256': thumbprint('edge.pem') });
    }
  });

  it.each([
    ['an escaped comma in the subject DN (it never matched)', 'smith', 'smith'],
    ['a multi-valued RDN (it never matched)', 'multi-rdn', 'multi'],
    ['an IPv6 SAN (it never matched Node’s 2001:DB8:0:0:0:0:0:1)', 'by-ipv6', 'sans'],
    ['a URI SAN', 'by-uri', 'sans'],
    ['an email SAN', 'by-email', 'sans'],
  ])('authenticates a tls_client_auth client registered by %s', async (_what, clientId, cert) => {
    const res = await post('/oauth2/token', grant(clientId), cert);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    // And not with a certificate from the same CA that shows another subject.
    expect((await post('/oauth2/token', grant(clientId), 'edge')).status).toBe(401);
  });

  it('reports the binding in introspection', async () => {
    const issued = await post('/oauth2/token', grant('edge-proxy'), 'edge');
    const basic = `Basic ${Buffer.from(`rs:${RS_SECRET}`).toString('base64')}`;
    const res = await post('/oauth2/introspect', { token: String(issued.json.access_token) }, undefined, { authorization: basic });
    expect(res.json).toMatchObject({ active: true, client_id: 'edge-proxy', cnf: { 'x5t#S256': thumbprint('edge.pem') } });
  });

  it('accepts a self-signed certificate whose key is in the client’s jwks', async () => {
    const res = await post('/oauth2/token', grant('batch-runner'), 'selfsigned');
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  });

  it.each([
    ['no certificate', 'edge-proxy', undefined],
    ['a certificate from another CA', 'edge-proxy', 'stranger'],
    ['a certificate with another subject', 'batch-runner', 'edge'],
    ['a self-signed certificate for a CA-only client', 'edge-proxy', 'selfsigned'],
  ])('answers 401 invalid_client for %s', async (_what, clientId, cert) => {
    const res = await post('/oauth2/token', grant(clientId), cert);
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  it('still serves secret-based clients on the same port, with no certificate', async () => {
    const res = await post('/oauth2/token', { grant_type: 'client_credentials' }, undefined, { authorization: `Basic ${Buffer.from(`rs:${RS_SECRET}`).toString('base64')}` });
    expect(res.status).toBe(200);
  });

  it('advertises mutual TLS in the metadata', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    expect(res.json()).toMatchObject({
      tls_client_certificate_bound_access_tokens: true,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'federated_jwt', 'spiffe_jwt'],
    });
  });
});

describe('client certificates from a TLS-terminating proxy', () => {
  it('believes the certificate header only from trust_proxy addresses, and checks its chain', async () => {
    const { certificateSource } = await import('../../src/http/client-certificate.js');
    const t = await buildTestApp({
      config: `issuer: https://auth.test
listen:
  client_cert_header: X-Client-Cert
  tls: { client_ca: ${pki.file('ca.pem')} }
trust_proxy: [127.0.0.1]
keys: { dir: ./keys }
store: { kind: memory }
`,
      clients: await registry(),
      deps: { certificates: certificateSource({ clientCaFile: pki.file('ca.pem'), header: 'x-client-cert', trustedProxies: ['127.0.0.1'] }) },
    });
    const ask = (cert: string, remoteAddress: string) =>
      t.app.inject({
        method: 'POST',
        url: '/oauth2/token',
        headers: { ...FORM, 'x-client-cert': encodeURIComponent(pki.pem(`${cert}.pem`)) },
        payload: form(grant('edge-proxy')),
        remoteAddress,
      });
    const ok = await ask('edge', '127.0.0.1');
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await ask('edge', '10.9.9.9')).statusCode).toBe(401);
    expect((await ask('stranger', '127.0.0.1')).statusCode).toBe(401);
  });
});
