import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksFetcher } from '../../src/clients/jwks-fetcher.js';
import { buildTestApp, form, FORM, tempDir, TestClock } from '../helpers.js';
import { makePki, type Pki } from '../tls-fixtures.js';

// A client's jwks_uri is a server tollgate does not control: whatever it does, a fetch ends
// within its deadline and its size limit.

const ISSUER = 'https://auth.test';
const DEADLINE_MS = 300;

let pki: Pki;
let server: Server;
let base: string;
let key: CryptoKey;
let jwks: string;

beforeAll(async () => {
  pki = makePki(tempDir());
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'slow-1', alg: 'ES256', use: 'sig' };
  jwks = JSON.stringify({ keys: [jwk] });
  server = createServer({ cert: pki.pem('server.pem'), key: pki.pem('server.key') }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/trickle') {
      // A valid set, one byte every 20 ms: never idle for long, never done in time.
      const bytes = Buffer.from(jwks);
      res.setHeader('content-length', bytes.length);
      let sent = 0;
      const timer = setInterval(() => {
        if (sent < bytes.length) res.write(bytes.subarray(sent, ++sent));
        else {
          clearInterval(timer);
          res.end();
        }
      }, 20);
      res.on('close', () => clearInterval(timer));
    } else if (req.url === '/large') {
      res.end(JSON.stringify({ keys: [], padding: 'x'.repeat(100_000) }));
    } else if (req.url === '/large-chunked') {
      // No Content-Length: the limit must hold while the body is read.
      for (let i = 0; i < 100; i++) res.write('x'.repeat(1000));
      res.end();
    } else if (req.url === '/not-json') {
      res.end('<html>private page</html>');
    } else {
      res.end(jwks);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('JwksFetcher', () => {
  it('fetches a set served at once', async () => {
    const fetcher = new JwksFetcher({ ca: pki.pem('ca.pem'), timeoutMs: 5000 });
    expect((await fetcher.keys(`${base}/fast`)).map((k) => k.kid)).toEqual(['slow-1']);
  });

  it('gives up on a set trickled one byte at a time when its total deadline passes', async () => {
    const fetcher = new JwksFetcher({ ca: pki.pem('ca.pem'), timeoutMs: DEADLINE_MS });
    await expect(fetcher.keys(`${base}/trickle`)).rejects.toThrow(`jwks_uri did not answer in full within ${DEADLINE_MS} ms`);
  });

  it('refuses a set over its size limit, announced or not', async () => {
    const fetcher = new JwksFetcher({ ca: pki.pem('ca.pem'), maxBytes: 64 * 1024 });
    await expect(fetcher.keys(`${base}/large`)).rejects.toThrow('jwks_uri answered more than 65536 bytes');
    await expect(fetcher.keys(`${base}/large-chunked`)).rejects.toThrow('jwks_uri answered more than 65536 bytes');
  });

  it('keeps what a server sent out of the error when it is not JSON', async () => {
    const fetcher = new JwksFetcher({ ca: pki.pem('ca.pem') });
    await expect(fetcher.keys(`${base}/not-json`)).rejects.toThrow(/^jwks_uri did not answer JSON$/);
  });

  it('answers a token request 401 invalid_client when the jwks_uri trickles past the deadline', async () => {
    const t = await buildTestApp({
      config: `issuer: ${ISSUER}
keys: { dir: ./keys }
store: { kind: memory }
`,
      clients: `clients:
  - client_id: trickler
    auth_methods: [private_key_jwt]
    jwks_uri: ${base}/trickle
    audiences: [https://api.test]
`,
      clock: new TestClock(Date.now()),
      deps: { jwksFetcher: new JwksFetcher({ ca: pki.pem('ca.pem'), timeoutMs: DEADLINE_MS }) },
    });
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ iss: 'trickler', sub: 'trickler', aud: ISSUER, jti: randomUUID(), exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'slow-1' })
      .sign(key);
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth2/token',
      headers: FORM,
      payload: form({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    expect(res.statusCode, res.body).toBe(401);
    expect(res.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    // The log says why, for the operator.
    expect(t.logs.events('client.auth_failed')).toContainEqual(
      expect.objectContaining({ client_id: 'trickler', reason: `assertion_jwks_unavailable:jwks_uri did not answer in full within ${DEADLINE_MS} ms` }),
    );
  });
});
