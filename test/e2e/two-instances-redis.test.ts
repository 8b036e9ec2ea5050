import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import { tempDir, writeFixture, type Fixture } from '../helpers.js';
import { CLI, httpClient, serviceAndResourceServer, startServerProcess, type ServerProcess } from '../server-process.js';
import { deleteKeys, REDIS_URL, redisAnswers, requireOrSkip, testPrefix } from '../store/redis-helpers.js';

// Two tollgate processes, one Redis, one key folder, one registry: one deployment.
const available = requireOrSkip(await redisAnswers(), `Redis at ${parseRedisUrl(REDIS_URL).display}`);
const PREFIX = testPrefix();
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';

let fixture: Fixture;
let a: ServerProcess;
let b: ServerProcess;

afterAll(async () => {
  if (available) await deleteKeys(PREFIX);
});

describe.skipIf(!available)('two instances sharing Redis', () => {
  beforeAll(async () => {
    const shared = tempDir();
    fixture = writeFixture({
      config: `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ${join(shared, 'keys')} }
store: { kind: redis, url: "${REDIS_URL}", prefix: "${PREFIX}" }
`,
      clients: await serviceAndResourceServer(SVC, RS),
    });
    // The first start generates the shared key; the second finds it.
    a = await startServerProcess(fixture.configFile);
    b = await startServerProcess(fixture.configFile);
  });

  const at = (server: () => ServerProcess) => httpClient(() => server().url);
  const A = at(() => a);
  const B = at(() => b);

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

  it('share a client’s disabling: its tokens are inactive on both at once', async () => {
    const fromA = await A.issue('svc', SVC);
    const fromB = await B.issue('svc', SVC);
    await promisify(execFile)(process.execPath, [CLI, 'client', 'disable', 'svc', '--config', fixture.configFile]);
    for (const server of [A, B]) {
      expect(await server.active('rs', RS, fromA)).toBe(false);
      expect(await server.active('rs', RS, fromB)).toBe(false);
    }
  });

  it('share throttling counts', async () => {
    // Both instances see the same address (loopback): ten failures split over A and B spend the
    // one count of client rs from this address.
    for (let i = 0; i < 10; i++) await (i % 2 === 0 ? A : B).post('/oauth2/token', 'rs', `wrong-${i}`, { grant_type: 'client_credentials' });
    expect((await A.post('/oauth2/token', 'rs', 'wrong-again', { grant_type: 'client_credentials' })).status).toBe(429);
    expect((await B.post('/oauth2/token', 'rs', 'wrong-again', { grant_type: 'client_credentials' })).status).toBe(429);
  });
});
