import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, writeFixture, type Fixture } from '../helpers.js';
import { CLI, httpClient, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import { plainSql, POSTGRES_URL, requirePostgres } from '../store/postgres-helpers.js';

// Two tollgate processes, one PostgreSQL database, one key folder, one registry: one deployment.
// The database is this file's own (made here, dropped after), so that disabling "svc" revokes
// no other test's tokens.
const available = requirePostgres();
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
const DB = available ? `${new URL(POSTGRES_URL).pathname.slice(1)}_e2e` : '';

let fixture: Fixture;
let a: ServerProcess;
let b: ServerProcess;

describe.skipIf(!available)('two instances sharing PostgreSQL', () => {
  beforeAll(async () => {
    const admin = plainSql();
    try {
      await admin.unsafe(`CREATE DATABASE ${DB}`);
    } finally {
      await admin.end();
    }
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${DB}`;
    const shared = tempDir();
    fixture = writeFixture({
      config: `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ${join(shared, 'keys')} }
store: { kind: postgres, url: "${url}" }
`,
      clients: await serviceAndResourceServer(SVC, RS),
    });
    // The key folder is empty: the first start generates the key, so the second starts after it.
    a = await startServerProcess(fixture.configFile);
    b = await startServerProcess(fixture.configFile);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    const admin = plainSql();
    try {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  const A = httpClient(() => a.url);
  const B = httpClient(() => b.url);

  it('share tokens: one issued by A is active at B, and verifies against B’s JWKS', async () => {
    const token = await A.issue('svc', SVC);
    expect(await B.active('rs', RS, token)).toBe(true);
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${b.url}/.well-known/jwks.json`)), { issuer: 'https://auth.test', typ: 'at+jwt' });
    expect(payload.client_id).toBe('svc');
  });

  it('share revocations: revoked at B, inactive at A at once', async () => {
    const token = await A.issue('svc', SVC);
    expect((await B.post('/oauth2/revoke', 'svc', SVC, { token })).status).toBe(200);
    expect(await A.active('rs', RS, token)).toBe(false);
    expect(await B.active('rs', RS, token)).toBe(false);
  });

  it('share a client’s disabling by the CLI: its tokens are inactive on both at once, and the count is printed', async () => {
    const fromA = await A.issue('svc', SVC);
    const fromB = await B.issue('svc', SVC);
    const { stderr } = await promisify(execFile)(process.execPath, [CLI, 'client', 'disable', 'svc', '--config', fixture.configFile]);
    expect(stderr).toMatch(/revoked \d+ live tokens? of client "svc" in postgres:\/\/postgres@127\.0\.0\.1:5432\//);
    for (const server of [A, B]) {
      expect(await server.active('rs', RS, fromA)).toBe(false);
      expect(await server.active('rs', RS, fromB)).toBe(false);
    }
  });

  it('share throttling counts', async () => {
    // Last: once rs has no failures left, an introspection that is not in the verified-secret
    // cache (emptied when the CLI rewrites the registry) is refused with 429.
    for (let i = 0; i < 10; i++) await (i % 2 === 0 ? A : B).post('/oauth2/token', 'rs', `wrong-${i}`, { grant_type: 'client_credentials' });
    expect((await A.post('/oauth2/token', 'rs', 'wrong-again', { grant_type: 'client_credentials' })).status).toBe(429);
    expect((await B.post('/oauth2/token', 'rs', 'wrong-again', { grant_type: 'client_credentials' })).status).toBe(429);
  });
});
