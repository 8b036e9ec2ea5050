#!/usr/bin/env node
// node bench/sign.mjs [N]: the CPU and wall time of one access-token signature, through jose's
// SignJWT (WebCrypto) and through tollgate's signJwt (node:crypto), for each of the algorithms
// tollgate signs with. Both sign the same claims with the same key, 50 signatures in flight at
// a time (as under load), in alternating rounds; needs the build (npm run build).

import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { importPKCS8, SignJWT } from 'jose';

const { signJwt } = await import(join(import.meta.dirname, '../dist/keys/jws.js'));
const ROUNDS = 3;
const IN_FLIGHT = 50;
const pairs = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
};
const now = Math.floor(Date.now() / 1000);
const claims = { iss: 'https://auth.example', sub: 'svc', aud: 'https://api.example', exp: now + 3600, iat: now, nbf: now, jti: '0123456789abcdefghijklmnopqrstuvwxyz', client_id: 'svc', scope: 'bench:read' };

/** CPU and wall µs per call of `f`, IN_FLIGHT calls at a time. */
async function measure(n, f) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  let started = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (started++ < n) await f(); }));
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / n, wall: ((performance.now() - start) * 1000) / n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('algorithm  jose CPU µs  signJwt CPU µs  saved µs  (medians of %d rounds; wall µs per token in parentheses)', ROUNDS);
for (const [alg, pair] of Object.entries(pairs)) {
  const key = await importPKCS8(pair().privateKey.export({ type: 'pkcs8', format: 'pem' }), alg);
  const signing = { kid: 'bench', alg, key, createdAt: 0 };
  const n = Number(process.argv[2] ?? (alg === 'RS256' ? 2000 : 20000));
  const jose = [];
  const own = [];
  for (let round = 0; round < ROUNDS; round++) {
    jose.push(await measure(n, () => new SignJWT({ ...claims }).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'bench' }).sign(key)));
    own.push(await measure(n, () => signJwt(signing, 'at+jwt', claims)));
  }
  const j = median(jose.map((r) => r.cpu));
  const o = median(own.map((r) => r.cpu));
  const w = (rs) => median(rs.map((r) => r.wall)).toFixed(0);
  console.log(`${alg.padEnd(9)}  ${j.toFixed(0).padStart(6)} (${w(jose)})  ${o.toFixed(0).padStart(9)} (${w(own)})  ${(j - o).toFixed(0).padStart(8)}`);
}
