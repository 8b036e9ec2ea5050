// The ceiling: the least a client-credentials token endpoint can do with the same stack
// (Fastify 5, @fastify/formbody, jose). It checks a plaintext secret in constant time, signs a
// JWT (RS256 unless CEILING_ALG says ES256 or EdDSA, as tollgate's keys.algorithm) with the claims tollgate issues (RFC 9068) and answers with no-store. No store, no
// registry, no logging. It also serves GET /bare (the cost of a Fastify route that does nothing),
// POST /bare (the same for a route that takes a form body, as introspection does) and GET /jwks
// (a JWKS of one key, the size of tollgate's with the same algorithm).
//
//   node bench/ceiling.mjs [--port N]        (or PORT=N; 0 picks a free port)
//   CEILING_CLIENT_ID, CEILING_CLIENT_SECRET, CEILING_SCOPE, CEILING_AUDIENCE, CEILING_ISSUER, CEILING_TTL,
//   CEILING_ALG (RS256, ES256 or EdDSA; default RS256)
//
// It prints one JSON line {"event":"ceiling.started","url":…} once it listens.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import formbody from '@fastify/formbody';
import Fastify from 'fastify';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port ?? process.env.PORT ?? 0);
const clientId = process.env.CEILING_CLIENT_ID ?? 'svc';
const clientSecret = process.env.CEILING_CLIENT_SECRET ?? 'ceiling-secret-0123456789abcdefghijklmnop';
const scope = process.env.CEILING_SCOPE ?? 'bench:read';
const audience = process.env.CEILING_AUDIENCE ?? 'https://api.bench.test';
const ttl = Number(process.env.CEILING_TTL ?? 3600);
let issuer = process.env.CEILING_ISSUER; // set from the listening address when not given

const alg = process.env.CEILING_ALG ?? 'RS256';
if (!['RS256', 'ES256', 'EdDSA'].includes(alg)) {
  console.error('ceiling: CEILING_ALG must be RS256, ES256 or EdDSA');
  process.exit(1);
}
// The keys tollgate makes for the same keys.algorithm: RSA 2048, P-256, Ed25519.
const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048 } : alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
const publicJwk = await exportJWK(publicKey);
const kid = await calculateJwkThumbprint(publicJwk);
const jwks = { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] };

const digest = (s) => createHash('sha256').update(s).digest();
const secretDigest = digest(clientSecret);
const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };

function fail(reply, status, error) {
  return reply.code(status).headers(noStore).send({ error, error_description: 'request failed' });
}

/** [id, secret] from Basic (form-urlencoded inside base64, RFC 6749 §2.3.1) or from the body. */
function credentials(req) {
  const header = req.headers.authorization;
  const body = req.body ?? {};
  if (header !== undefined) {
    if (body.client_secret !== undefined) return undefined;
    const m = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(header);
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    try {
      const unform = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
      return [unform(decoded.slice(0, colon)), unform(decoded.slice(colon + 1))];
    } catch {
      return undefined;
    }
  }
  if (typeof body.client_id === 'string' && typeof body.client_secret === 'string') return [body.client_id, body.client_secret];
  return undefined;
}

const app = Fastify({ logger: false });
await app.register(formbody);

app.post('/token', async (req, reply) => {
  const creds = credentials(req);
  // Compare digests so the comparison takes the same time whatever the secret's length.
  if (!creds || creds[0] !== clientId || !timingSafeEqual(digest(creds[1]), secretDigest)) {
    return fail(reply.header('www-authenticate', 'Basic realm="ceiling"'), 401, 'invalid_client');
  }
  if (req.body?.grant_type !== 'client_credentials') return fail(reply, 400, 'unsupported_grant_type');
  const now = Math.floor(Date.now() / 1000);
  const accessToken = await new SignJWT({
    iss: issuer,
    sub: clientId,
    client_id: clientId,
    aud: audience,
    iat: now,
    nbf: now,
    exp: now + ttl,
    jti: randomBytes(18).toString('base64url'),
    scope,
  })
    .setProtectedHeader({ alg, typ: 'at+jwt', kid })
    .sign(privateKey);
  return reply.headers(noStore).send({ access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope });
});

app.get('/bare', async () => ({ ok: true }));
// The form is parsed by @fastify/formbody before the handler runs, as for every tollgate endpoint.
app.post('/bare', async (req) => ({ ok: typeof req.body?.token === 'string' }));
// Serialized once, as tollgate serves its own: the least a JWKS route can do.
const jwksText = JSON.stringify(jwks);
app.get('/jwks', async (_req, reply) =>
  reply.headers({ 'cache-control': 'public, max-age=300', 'content-type': 'application/json; charset=utf-8' }).send(jwksText),
);

const url = await app.listen({ host: '127.0.0.1', port });
issuer ??= url;
console.log(JSON.stringify({ event: 'ceiling.started', url }));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
