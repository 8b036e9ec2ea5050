#!/usr/bin/env node
// node bench/enumeration-timing.mjs [N] [path/to/tollgate.cjs]: whether response time tells a
// registered client_id from an unknown one. Starts `tollgate serve` (the built CLI) with two
// clients, one hashed with tollgate's parameters and one with costlier ones (m=65536,t=3,p=4),
// sends N wrong secrets for each and N unknown ids, one at a time, and prints the medians.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import argon2 from 'argon2';

const N = Number(process.argv[2] ?? 101);
const CLI = resolve(process.argv[3] ?? join(import.meta.dirname, '../dist/cli/tollgate.cjs'));
const dir = mkdtempSync(join(tmpdir(), 'tollgate-timing-'));
const plain = await argon2.hash('plain-secret-0123456789abcdefghijklmnopq', { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
const costly = await argon2.hash('costly-secret-0123456789abcdefghijklmnop', { type: argon2.argon2id, memoryCost: 65_536, timeCost: 3, parallelism: 4 });
writeFileSync(join(dir, 'clients.yaml'), `clients:
  - { client_id: plain, secrets: [{ hash: "${plain}" }], audiences: [https://api.test] }
  - { client_id: costly, secrets: [{ hash: "${costly}" }], audiences: [https://api.test] }
`);
writeFileSync(join(dir, 'tollgate.yaml'), `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
throttle: { client_failures: 1000000, address_failures: 1000000 }
log: { level: info }
`);
const proc = spawn(process.execPath, [CLI, 'serve', '--config', join(dir, 'tollgate.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const url = await new Promise((res, rej) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /"url":"([^"]+)"/.exec(out) ?? /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) res(m[1]);
    });
    proc.on('exit', (code) => rej(new Error(`serve exited ${code}`)));
  });
  const ask = async (id, secret) => {
    const start = process.hrtime.bigint();
    const r = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    await r.arrayBuffer();
    if (r.status !== 401) throw new Error(`expected 401, got ${r.status}`);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const kinds = { 'wrong secret, plain client': (i) => ask('plain', `wrong-${i}`), 'wrong secret, costly client': (i) => ask('costly', `wrong-${i}`), 'unknown client_id': (i) => ask(`nobody-${i}`, `wrong-${i}`) };
  const times = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  await ask('nobody', 'warm-up');
  // Interleaved, so that a change of machine load touches every kind alike.
  for (let i = 0; i < N; i++) for (const [k, f] of Object.entries(kinds)) times[k].push(await f(i));
  for (const [k, xs] of Object.entries(times)) console.log(`${k.padEnd(28)} median ${median(xs).toFixed(1)} ms over ${N}`);
} finally {
  proc.kill();
  rmSync(dir, { recursive: true, force: true });
}
