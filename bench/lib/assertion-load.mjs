// Token requests authenticated with a JWT client assertion: federated_jwt (a Kubernetes-shaped
// service account token, reusable until it expires) against private_key_jwt (an assertion
// signed by the client, whose jti makes every request's body unique). wrk and autocannon send
// one fixed body, so these runs use a load loop of their own: a fixed number of requests over
// `connections` kept-alive connections, the private_key_jwt assertions minted beforehand so
// that minting costs the run nothing.

import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { cpuMs, rssMiB } from './processes.mjs';

export const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:bench:svc';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Keys and registry entries for both methods, with the same algorithm (ES256) so that only the
 * method differs: a trusted issuer with inline keys (no fetch during the run) and a client of
 * each method.
 */
export async function assertionClients(scope, audience) {
  const issuerKey = await generateKeyPair('ES256', { extractable: true });
  const clientKey = await generateKeyPair('ES256', { extractable: true });
  const jwk = async (k, kid) => ({ ...(await exportJWK(k.publicKey)), kid, alg: 'ES256', use: 'sig' });
  return {
    issuerKey,
    clientKey,
    trustedIssuers: [{ name: 'bench-cluster', issuer: K8S_ISSUER, jwks: { keys: [await jwk(issuerKey, 'k8s-bench')] }, max_lifetime: '1h' }],
    clients: [
      { client_id: 'fed', auth_methods: ['federated_jwt'], federated_identity: { issuer: 'bench-cluster', subject: SUBJECT }, scopes: [scope], audiences: [audience] },
      { client_id: 'pkjwt', auth_methods: ['private_key_jwt'], jwks: { keys: [await jwk(clientKey, 'client-bench')] }, scopes: [scope], audiences: [audience] },
    ],
  };
}

const tokenForm = (fields) => new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, ...fields }).toString();

/** The body of a federated request: one projected service account token, as a pod sends it every time. */
export async function federatedBody(keys, issuer, scope) {
  const iat = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({
    aud: [issuer],
    exp: iat + 3600,
    iat,
    iss: K8S_ISSUER,
    jti: randomUUID(),
    'kubernetes.io': { namespace: 'bench', pod: { name: 'svc-0', uid: randomUUID() }, serviceaccount: { name: 'svc', uid: randomUUID() } },
    nbf: iat,
    sub: SUBJECT,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'k8s-bench' })
    .sign(keys.issuerKey.privateKey);
  return tokenForm({ client_id: 'fed', client_assertion: token, scope });
}

/** `count` bodies of private_key_jwt requests, each with an assertion of its own jti. */
export async function privateKeyJwtBodies(keys, issuer, scope, count) {
  const bodies = [];
  const iat = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i++) {
    const assertion = await new SignJWT({ iss: 'pkjwt', sub: 'pkjwt', aud: issuer, jti: randomUUID(), iat, exp: iat + 280 })
      .setProtectedHeader({ alg: 'ES256', kid: 'client-bench' })
      .sign(keys.clientKey.privateKey);
    bodies.push(tokenForm({ client_assertion: assertion, scope }));
  }
  return bodies;
}

/**
 * Sends `requests` token requests, `nextBody()` each, over `connections` connections; every
 * answer must be 200. Returns { rps, p50, p99, rssPeak (RSS at the end), cpuPerRequest } like bench/lib/load.mjs.
 */
export async function assertionLoad(target, nextBody, { connections, requests }) {
  const url = new URL('/oauth2/token', target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  let sent = 0;
  let failed;
  const one = (body) =>
    new Promise((resolve) => {
      const started = process.hrtime.bigint();
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
            if (res.statusCode !== 200) failed ??= `HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`;
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        failed ??= err.message;
        resolve();
      });
      req.end(body);
    });
  const cpuBefore = cpuMs(target.pid);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (sent < requests && failed === undefined) {
        sent += 1;
        await one(nextBody());
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuAfter = cpuMs(target.pid);
  const rssPeak = rssMiB(target.pid);
  agent.destroy();
  if (failed !== undefined) throw new Error(failed);
  latencies.sort((a, b) => a - b);
  const at = (q) => +latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
  return {
    rps: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    rssPeak,
    cpuPerRequest: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1000) / latencies.length,
  };
}
