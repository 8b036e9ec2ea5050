import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTag } from '../../src/store/token-slot.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import { makeRecord } from './contract/token-records.js';
import { hasRedisServer, requireOrSkip } from './redis-helpers.js';
import { ask, killNode, quickClient, startClusterSetup, until, type ClusterSetup } from './redis-ha-fixtures.js';
import { tollgateInProcess } from '../cli/run-cli.js';
import { writeFixture } from '../helpers.js';
import { activeOf, appOn, asSvc, expectUnavailable, issue, revoke, runContracts, storeOpener, throughFailover } from './redis-ha-scenarios.js';

// A cluster of three masters and three replicas of this file's own (redis-ha-fixtures.ts), shared
// by every test here; the failover test, which leaves a master down for good, runs last.
const available = requireOrSkip(hasRedisServer(), 'the redis-server program');
let cluster: ClusterSetup | undefined;
const opener = storeOpener(() => ({ cluster: { nodes: cluster!.nodes.slice(0, 2) } }));

beforeAll(async () => {
  if (available) cluster = await startClusterSetup();
});

afterAll(async () => {
  await opener.closeAll();
  await cluster?.stop();
});

/** Where the tokens of client svc and its revocations live: one slot, named by its hash tag. */
const svcKey = (prefix: string) => `${prefix}{${clientTag('svc')}}:client-revoked`;

describe.skipIf(!available)('RedisTokenStore on a Redis Cluster', () => {
  runContracts('redis cluster', opener);

  it("keeps a token's record and its client's revocations in one slot, spreading clients over the masters", async () => {
    const prefix = `tollgate-ha:${Date.now()}:layout:`;
    const store = opener.open({ prefix });
    const now = Math.floor(Date.now() / 1000);
    const records = Array.from({ length: 30 }, (_, i) => makeRecord({ iat: now, clientId: `client-${i}` }));
    await Promise.all(records.map((r) => store.record(r)));
    await Promise.all(records.map((r) => store.revokeClient(r.clientId, (now - 10) * 1000)));
    const slotOf = async (key: string) => (await ask(cluster!.masters[0]!.port, 'CLUSTER', 'KEYSLOT', key)) as number;
    const owners = new Set<number>();
    for (const r of records) {
      const tokenKey = `${prefix}{${clientTag(r.clientId)}}:token:${r.jti}`;
      expect(await slotOf(tokenKey)).toBe(await slotOf(`${prefix}{${clientTag(r.clientId)}}:client-revoked`));
      owners.add((await cluster!.masterOf(tokenKey)).port);
    }
    // Thirty clients land on every master.
    expect(owners.size).toBe(3);
    // A jti that carries no tag (or another client's) cannot be placed: refused, never misfiled.
    await expect(store.record({ ...records[0]!, jti: 'A'.repeat(32) })).rejects.toThrow(/does not carry its client's tag/);
    await expect(store.record({ ...records[0]!, clientId: 'client-1' })).rejects.toThrow(/does not carry its client's tag/);
    expect(await store.find('A'.repeat(32))).toBeUndefined();
  });

  it('is what config check reaches; a node that does not answer is named, with no stack trace', async () => {
    const configFor = (nodes: string) =>
      writeFixture({
        config: `issuer: https://auth.test\nkeys: { dir: ./keys }\nstore: { kind: redis, cluster: { nodes: [${nodes}] } }\n`,
        clients: 'clients: []\n',
      }).configFile;
    const ok = await tollgateInProcess(['config', 'check', '--config', configFor(cluster!.nodes[0]!)], { cwd: process.cwd() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`redis token store redis-cluster://${cluster!.nodes[0]}`);
    const down = await tollgateInProcess(['config', 'check', '--config', configFor('127.0.0.1:1')], { cwd: process.cwd() });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/store\.cluster: cannot reach the token store: redis-cluster:\/\/127\.0\.0\.1:1: /);
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });

  it('follows MOVED and ASK while the slot of a client moves to another master', async () => {
    const prefix = `tollgate-ha:${Date.now()}:reshard:`;
    const store = opener.open({ prefix });
    const now = Math.floor(Date.now() / 1000);
    const old = makeRecord({ iat: now - 100, clientId: 'svc' });
    const live = Array.from({ length: 10 }, () => makeRecord({ iat: now, clientId: 'svc' }));
    await Promise.all([old, ...live].map((r) => store.record(r)));
    await store.revokeClient('svc', (now - 50) * 1000);
    await store.revoke(live[0]!.jti, now * 1000);
    const expectStates = async (records: readonly TokenRecord[]) => {
      const found = await Promise.all(records.map((r) => store.find(r.jti)));
      expect(found.map((f) => f?.digest)).toEqual(records.map((r) => r.digest));
      const revoked = new Set([old.jti, live[0]!.jti]);
      expect(found.map((f) => f?.revokedAt !== undefined)).toEqual(records.map((r) => revoked.has(r.jti)));
    };
    await expectStates([old, ...live]);

    const source = await cluster!.masterOf(svcKey(prefix));
    const target = cluster!.masters.find((m) => m !== source)!;
    const slot = (await ask(source.port, 'CLUSTER', 'KEYSLOT', svcKey(prefix))) as number;
    const sourceId = (await ask(source.port, 'CLUSTER', 'MYID')) as string;
    const targetId = (await ask(target.port, 'CLUSTER', 'MYID')) as string;
    // The slot moves the way redis-cli --cluster reshard moves it, one step at a time.
    expect(await ask(target.port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId)).toBe('OK');
    expect(await ask(source.port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId)).toBe('OK');
    // A token issued now is recorded on the target, the source sending the store there (ASK).
    const during = makeRecord({ iat: now, clientId: 'svc' });
    await store.record(during);
    const mover = quickClient(source.port);
    await mover.connect();
    try {
      const keys = (await mover.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')) as string[];
      expect(keys.length).toBeGreaterThanOrEqual(12);
      expect(await mover.call('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys)).toBe('OK');
    } finally {
      mover.disconnect();
    }
    // Every key has moved, the slot not yet: each lookup is sent on by ASK, and reads both its keys there.
    await expectStates([old, ...live, during]);
    for (const node of cluster!.masters) expect(await ask(node.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId)).toBe('OK');
    // The slot is the target's now: MOVED, and the store learns the new owner.
    await expectStates([old, ...live, during]);
    expect((await cluster!.masterOf(svcKey(prefix))).port).toBe(target.port);
    const after = makeRecord({ iat: now, clientId: 'svc' });
    await store.record(after);
    expect(await store.revoke(after.jti, Date.now())).toBe(true);
    expect((await store.find(after.jti))?.revokedAt).toBeDefined();
  });

  it('answers a revocation 503 when the replica of its master is gone, and 200 once it is back', async () => {
    const store = opener.open({ minReplicas: 1 });
    const t = await appOn(store);
    const first = await issue(t);
    expect((await revoke(t.app, first, asSvc)).statusCode).toBe(200);
    const master = await cluster!.masterOf(svcKey(''));
    // Every key of svc is in the slot of its tag, whatever the prefix: the same master.
    expect((await cluster!.masterOf(`x{${clientTag('svc')}}`)).port).toBe(master.port);
    const replica = await cluster!.replicaOf(master);
    const second = await issue(t);
    await killNode(replica);
    try {
      expectUnavailable(await revoke(t.app, second, asSvc));
      expect(await activeOf(t, await issue(t))).toBe(true);
    } finally {
      await cluster!.restart(replica);
    }
    expect((await revoke(t.app, second, asSvc)).statusCode).toBe(200);
    expect(await activeOf(t, second)).toBe(false);
  });

  it('follows a master failing over without a restart: a revocation confirmed before it holds, and tokens are issued again', async () => {
    const events: string[] = [];
    const logger = { warn: (o: { event: string }) => events.push(o.event), info: (o: { event: string }) => events.push(o.event) };
    const store = opener.open({ minReplicas: 1, logger: logger as never });
    const t = await appOn(store);
    const revoked = await issue(t);
    const kept = await issue(t);
    expect((await revoke(t.app, revoked, asSvc)).statusCode).toBe(200);
    const master = await cluster!.masterOf(svcKey(''));
    const replica = await cluster!.replicaOf(master);
    await throughFailover(t, () => killNode(master), { revoked, kept });
    expect((await cluster!.masterOf(svcKey(''))).port).toBe(replica.port);
    await until('every node to see the cluster whole', async () => {
      const states = await Promise.all(cluster!.all.filter((n) => n !== master).map((n) => ask(n.port, 'CLUSTER', 'INFO')));
      return states.every((s) => typeof s === 'string' && s.includes('cluster_state:ok'));
    });
    // The outage was reported once, and its end once no node has failed for a while.
    await until('the store to report its recovery', async () => {
      await issue(t);
      return events.includes('store.recovered');
    });
    expect(events).toEqual(['store.unavailable', 'store.recovered']);
    // A failover takes seconds, or tens of seconds when the first election fails on a busy
    // machine: the scenario's own deadlines (60 s for the first token, 20 s for the sentinels)
    // end it, not the default test timeout.
  }, 120_000);
});
