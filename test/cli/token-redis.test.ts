import { afterAll, describe, expect, it } from 'vitest';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import { hashOf, writeFixture } from '../helpers.js';
import { type CliRun, tollgateInProcess } from './run-cli.js';
import { makeRecord } from '../store/contract/token-records.js';
import { deleteKeys, freePort, REDIS_URL, redisAnswers, requireOrSkip, testPrefix } from '../store/redis-helpers.js';

const available = requireOrSkip(await redisAnswers(), `Redis at ${parseRedisUrl(REDIS_URL).display}`);
const PREFIX = testPrefix();
const SECRET = 'svc-secret-0123456789abcdefghijklmnopqrstu';
// How tollgate names this run's database in a message: the URL without credentials.
const WHERE = parseRedisUrl(REDIS_URL).display.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function tollgate(configFile: string, ...args: string[]): Promise<CliRun> {
  // The working directory the binary used to inherit: the tests' own.
  return tollgateInProcess([...args, '--config', configFile], { cwd: process.cwd() });
}

async function fixtureFor(url: string): Promise<string> {
  return writeFixture({
    config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: redis, url: "${url}", prefix: "${PREFIX}" }
`,
    clients: `clients:
  - client_id: svc
    secrets: [{ hash: "${await hashOf(SECRET)}" }]
    audiences: [https://api.test]
`,
  }).configFile;
}

describe.skipIf(!available)('the CLI against a Redis store', () => {
  const store = new RedisTokenStore({ url: REDIS_URL, prefix: PREFIX });
  afterAll(async () => {
    await store.close();
    await deleteKeys(PREFIX);
  });

  it('token revoke --jti revokes one token in Redis, and names the server when the jti is unknown', async () => {
    const config = await fixtureFor(REDIS_URL);
    const rec = makeRecord({ iat: Math.floor(Date.now() / 1000), clientId: 'svc' });
    await store.record(rec);
    // --jti=VALUE: a random jti starts with '-' one time in 64, which the CLI refuses as ambiguous.
    const run = await tollgate(config, 'token', 'revoke', `--jti=${rec.jti}`);
    expect(run.code, run.stderr).toBe(0);
    expect((await store.find(rec.jti))?.revokedAt).toBeDefined();

    const unknown = await tollgate(config, 'token', 'revoke', '--jti', 'no-such-jti');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(new RegExp(`no token with jti "no-such-jti" in ${WHERE}`));
  });

  it('client disable revokes the client in Redis before saving the registry', async () => {
    const config = await fixtureFor(REDIS_URL);
    const rec = makeRecord({ iat: Math.floor(Date.now() / 1000) - 1, clientId: 'svc' });
    await store.record(rec);
    const run = await tollgate(config, 'client', 'disable', 'svc');
    expect(run.code, run.stderr).toBe(0);
    expect((await store.find(rec.jti))?.revokedAt).toBeDefined();
    // Where, with the prefix; Redis keeps no index by client, so no count.
    expect(run.stderr).toMatch(new RegExp(`; revoked every token of client "svc" issued until now in ${WHERE} \\(prefix "`));
  });

  it('fails in one line, naming the server but not its password, when Redis is unreachable', async () => {
    const port = await freePort();
    const config = await fixtureFor(`redis://:hunter2-pw@127.0.0.1:${port}/0`);
    const run = await tollgate(config, 'token', 'revoke', '--client', 'svc');
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`^tollgate: redis://127\\.0\\.0\\.1:${port}/0: cannot write to the token store: not connected`));
    expect(run.stderr).not.toContain('hunter2');

    // The registry is left as it was when the revocation could not be made.
    const disable = await tollgate(config, 'client', 'disable', 'svc');
    expect(disable.code).toBe(1);
    expect(disable.stderr).not.toContain('hunter2');
  });
});
