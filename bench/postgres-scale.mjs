#!/usr/bin/env node
// node bench/postgres-scale.mjs [--rows N] [--postgres-url URL]: how the PostgreSQL store behaves
// as its token table grows. In a database made for the run (dropped after), it measures:
// - the write rate of the store's group commit (records/s, 200 callers at once);
// - bytes per token (table, its indexes and TOAST) once N live records are in (default 1,000,000);
// - introspection lookups (the store's find) with 1,000 records and with N: latency of one at a
//   time (p50, p99) and the rate with 200 callers at once;
// - purging 100,000 expired records in batches, and lookup latency meanwhile.
// A measurement, not a test: figures depend on the machine and what else runs on it.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { rows: { type: 'string' }, 'postgres-url': { type: 'string' }, 'no-build': { type: 'boolean' } } });
const ROWS = Number(values.rows ?? 1_000_000);
const SERVER = values['postgres-url'] ?? process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

if (!values['no-build']) {
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
}
const { PostgresTokenStore } = await import(join(ROOT, 'dist/store/postgres-token-store.js'));
const { default: postgres } = await import('postgres');

const name = `tollgate_scale_${process.pid}_${randomBytes(3).toString('hex')}`;
const admin = postgres(SERVER, { max: 1, onnotice: () => {}, fetch_types: false });
await admin.unsafe(`CREATE DATABASE ${name}`);
const url = new URL(SERVER);
url.pathname = `/${name}`;
const store = new PostgresTokenStore({ url: url.toString() });
const sql = postgres(url.toString(), { max: 1, onnotice: () => {}, fetch_types: false });
const log = (...a) => console.log(...a);

const now = Math.floor(Date.now() / 1000);
const jti = () => `${Date.now().toString(36).padStart(8, '0')}${randomBytes(18).toString('base64url')}`;
const record = (over = {}) => ({
  jti: jti(),
  clientId: 'payments-service',
  scope: 'orders:read orders:write',
  aud: ['https://api.example.com'],
  iat: now,
  exp: now + 3600,
  digest: randomBytes(32).toString('base64url'),
  ...over,
});
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(2)} ms`;

async function lookups(jtis, label) {
  const times = [];
  for (let i = 0; i < 2000; i++) {
    const j = jtis[Math.floor(Math.random() * jtis.length)];
    const t0 = performance.now();
    const r = await store.find(j);
    times.push(performance.now() - t0);
    if (r === undefined) throw new Error(`lookup of a recorded jti found nothing (${label})`);
  }
  let next = 0;
  const total = 20_000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      while (next < total) {
        next++;
        await store.find(jtis[Math.floor(Math.random() * jtis.length)]);
      }
    }),
  );
  const rate = total / ((performance.now() - t0) / 1000);
  log(`lookups with ${label}: one at a time p50 ${ms(pct(times, 50))}, p99 ${ms(pct(times, 99))}; 200 at once ${Math.round(rate).toLocaleString('en-US')}/s`);
}

try {
  await store.untilOpened();
  log(`database ${name}; PostgreSQL ${(await sql.unsafe('SHOW server_version'))[0].server_version}, synchronous_commit ${(await sql.unsafe('SHOW synchronous_commit'))[0].synchronous_commit}`);

  // Write rate: 50,000 records from 200 callers at once, as a busy token endpoint would send.
  const first = Array.from({ length: 1000 }, () => record());
  await Promise.all(first.map((r) => store.record(r)));
  await lookups(
    first.map((r) => r.jti),
    '1,000 records',
  );
  {
    let next = 0;
    const total = 50_000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < total) {
          next++;
          await store.record(record());
        }
      }),
    );
    log(`group commit: ${Math.round(total / ((performance.now() - t0) / 1000)).toLocaleString('en-US')} records/s (200 callers at once)`);
  }

  // Fill up to ROWS live records with the same shapes, generated in the server (faster than the store).
  const t0 = performance.now();
  const have = Number((await sql.unsafe('SELECT count(*) AS n FROM tollgate_tokens'))[0].n);
  for (let done = have; done < ROWS; done += 100_000) {
    const n = Math.min(100_000, ROWS - done);
    await sql.unsafe(
      `INSERT INTO tollgate_tokens (jti, client_id, scope, aud, iat, exp, digest)
       SELECT lpad(to_hex(${done} + i), 8, '0') || translate(substr(encode(sha256(('j' || (${done} + i))::bytea), 'base64'), 1, 24), '+/', '-_'),
              'payments-service', 'orders:read orders:write', '["https://api.example.com"]', ${now}, ${now + 3600},
              translate(rtrim(encode(sha256(('d' || (${done} + i))::bytea), 'base64'), '='), '+/', '-_')
       FROM generate_series(1, ${n}) AS i`,
    );
  }
  await sql.unsafe('VACUUM ANALYZE tollgate_tokens');
  log(`filled to ${ROWS.toLocaleString('en-US')} records in ${((performance.now() - t0) / 1000).toFixed(1)} s (server-side INSERT ... SELECT)`);
  const [size] = await sql.unsafe(
    `SELECT count(*) AS n, pg_table_size('tollgate_tokens') AS heap, pg_indexes_size('tollgate_tokens') AS idx,
            pg_total_relation_size('tollgate_tokens') AS total FROM tollgate_tokens`,
  );
  const n = Number(size.n);
  log(
    `size at ${n.toLocaleString('en-US')} records: ${(Number(size.total) / 2 ** 20).toFixed(0)} MiB in all ` +
      `(table ${(Number(size.heap) / 2 ** 20).toFixed(0)} MiB, indexes ${(Number(size.idx) / 2 ** 20).toFixed(0)} MiB): ` +
      `${Math.round(Number(size.total) / n)} bytes per token (${Math.round(Number(size.heap) / n)} table + ${Math.round(Number(size.idx) / n)} indexes)`,
  );
  const sample = (await sql.unsafe('SELECT jti FROM tollgate_tokens TABLESAMPLE SYSTEM (1) LIMIT 20000')).map((r) => r.jti);
  await lookups(sample, `${n.toLocaleString('en-US')} records`);

  // Purge: 100,000 records expire; lookups of live ones go on meanwhile.
  await sql.unsafe(`UPDATE tollgate_tokens SET exp = ${now - 10} WHERE jti IN (SELECT jti FROM tollgate_tokens LIMIT 100000)`);
  const live = (await sql.unsafe(`SELECT jti FROM tollgate_tokens WHERE exp > ${now} LIMIT 5000`)).map((r) => r.jti);
  let purging = true;
  const during = [];
  const watcher = (async () => {
    while (purging) {
      const t = performance.now();
      await store.find(live[Math.floor(Math.random() * live.length)]);
      during.push(performance.now() - t);
    }
  })();
  const p0 = performance.now();
  const purged = await store.purgeExpired(Date.now());
  const purgeSeconds = (performance.now() - p0) / 1000;
  purging = false;
  await watcher;
  log(
    `purge: ${purged.toLocaleString('en-US')} expired records in ${purgeSeconds.toFixed(1)} s (${Math.round(purged / purgeSeconds).toLocaleString('en-US')}/s, batches of 1,000); ` +
      `lookups meanwhile p50 ${ms(pct(during, 50))}, p99 ${ms(pct(during, 99))}, max ${ms(Math.max(...during))}`,
  );
} finally {
  await store.close();
  await sql.end();
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
