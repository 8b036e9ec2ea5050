import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRecord } from './contract/token-records.js';
import { hasRedisServer, requireOrSkip } from './redis-helpers.js';
import { killNode, startSentinelSetup, until, type SentinelSetup } from './redis-ha-fixtures.js';
import { activeOf, appOn, asSvc, expectUnavailable, issue, revoke, runContracts, storeOpener, throughFailover } from './redis-ha-scenarios.js';
import { tollgateInProcess } from '../cli/run-cli.js';
import { hashOf, writeFixture } from '../helpers.js';

// A primary, one replica and three sentinels of this file's own (redis-ha-fixtures.ts), shared by
// every test here; the failover test, which leaves the set-up without its first primary, runs last.
const available = requireOrSkip(hasRedisServer(), 'the redis-server program');
let setup: SentinelSetup | undefined;
const opener = storeOpener(() => ({ sentinel: { master: setup!.master, nodes: setup!.nodes, password: setup!.sentinelPassword } }));

beforeAll(async () => {
  if (available) setup = await startSentinelSetup();
});

afterAll(async () => {
  await opener.closeAll();
  await setup?.stop();
});

describe.skipIf(!available)('RedisTokenStore through Sentinel', () => {
  runContracts('redis sentinel', opener);

  it('names the sentinels and the master in messages, never a password', async () => {
    const unknownMaster = opener.open({ sentinel: { master: 'no-such-master', nodes: setup!.nodes, password: setup!.sentinelPassword }, password: 'not-the-password-9' });
    const wrongPassword = opener.open({ sentinel: { master: setup!.master, nodes: setup!.nodes, password: 'wr0ng-sentinel-pa55' } });
    for (const [store, master] of [
      [unknownMaster, 'no-such-master'],
      [wrongPassword, setup!.master],
    ] as const) {
      const err = await store.ping().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(new RegExp(`^redis-sentinel://${setup!.nodes.join(',')}/${master}: not connected`));
      expect(err?.message).not.toMatch(/not-the-password-9|wr0ng-sentinel-pa55|sentinel-pa55/);
    }
  });

  it('answers a revocation only once the replica has it, and refuses to when the replica is gone', async () => {
    const store = opener.open({ minReplicas: 1 });
    const t = await appOn(store);
    const first = await issue(t);
    expect((await revoke(t.app, first, asSvc)).statusCode).toBe(200);
    expect(await activeOf(t, first)).toBe(false);

    const second = await issue(t);
    await killNode(setup!.replica);
    try {
      // The revocation reaches the primary, but no replica confirms it within the wait: 503.
      expectUnavailable(await revoke(t.app, second, asSvc));
      await expect(store.revokeClient('another-client', Date.now())).rejects.toThrow(/0 of the 1 replicas store\.min_replicas asks for acknowledged it/);
      // Everything else goes on without the replica.
      expect(await activeOf(t, await issue(t))).toBe(true);
    } finally {
      await setup!.restartReplica();
    }
    // Revoking again is harmless, and confirmed now.
    expect((await revoke(t.app, second, asSvc)).statusCode).toBe(200);
  });

  it('makes the CLI exit 1 with one line when no replica confirms a client revocation', async () => {
    const prefix = `tollgate-ha-cli:${Date.now()}:`;
    const config = writeFixture({
      config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: redis, sentinel: { master: ${setup!.master}, nodes: [${setup!.nodes.join(', ')}] }, prefix: "${prefix}", min_replicas: 1 }
`,
      clients: `clients:\n  - client_id: svc\n    secrets: [{ hash: "${await hashOf(asSvc.secret)}" }]\n    audiences: [https://api.test]\n`,
    }).configFile;
    const store = opener.open({ prefix });
    const rec = makeRecord({ iat: Math.floor(Date.now() / 1000) - 1, clientId: 'svc' });
    await store.record(rec);

    // The sentinels' password from the environment, as an operator keeps it out of the file.
    const env = { TOLLGATE_STORE__SENTINEL__PASSWORD: setup!.sentinelPassword };
    const ok = await tollgateInProcess(['token', 'revoke', `--jti=${rec.jti}`, '--config', config], { cwd: process.cwd(), env });
    expect(ok.code, ok.stderr).toBe(0);

    await killNode(setup!.replica);
    try {
      const run = await tollgateInProcess(['token', 'revoke', '--client', 'svc', '--config', config], { cwd: process.cwd(), env });
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/replicas store\.min_replicas asks for/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stderr).not.toContain(setup!.sentinelPassword);
    } finally {
      await setup!.restartReplica();
    }
  });

  it('follows a failover without a restart: a revocation confirmed before it holds, and tokens are issued again', async () => {
    const store = opener.open({ minReplicas: 1 });
    const t = await appOn(store);
    const revoked = await issue(t);
    const kept = await issue(t);
    expect((await revoke(t.app, revoked, asSvc)).statusCode).toBe(200);
    // The client's revocation too: confirmed by the replica before the answer.
    const other = opener.open({ minReplicas: 1 });
    const old = makeRecord({ iat: Math.floor(Date.now() / 1000) - 5, clientId: 'gone-client' });
    await other.record(old);
    await other.revokeClient('gone-client', Date.now());

    const oldPrimary = setup!.primary.port;
    await throughFailover(t, () => killNode(setup!.primary), { revoked, kept });
    await until('the sentinels to name the new primary', async () => (await setup!.currentPrimaryPort()) === setup!.replica.port);
    expect(oldPrimary).not.toBe(setup!.replica.port);
    expect((await other.find(old.jti))?.revokedAt).toBeDefined();

    // The new primary has no replica left: a revocation cannot be confirmed, and says so.
    expectUnavailable(await revoke(t.app, kept, asSvc));
    // A failover takes seconds, or tens of seconds when the first election fails on a busy
    // machine: the scenario's own deadlines (60 s for the first token, 20 s for the sentinels)
    // end it, not the default test timeout.
  }, 120_000);
});
