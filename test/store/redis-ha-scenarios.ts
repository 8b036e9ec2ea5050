import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { RedisTokenStore, type RedisTokenStoreOptions } from '../../src/store/redis-token-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { API, client, introspect, registryYaml, revoke, tokenRequest } from '../builders.js';
import { buildTestApp, TestClock, type TestApp } from '../helpers.js';
import { failureCountersContract } from './contract/failure-counters.js';
import { replayClaimsContract } from './contract/replay-claims.js';
import { signingKeyRecordsContract } from './contract/signing-key-records.js';
import { storeLifecycleContract } from './contract/store-lifecycle.js';
import { tokenRecordsContract } from './contract/token-records.js';

// What the Sentinel and the Cluster test files both check, each against its own servers.

export const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
export const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';

type Where = Pick<RedisTokenStoreOptions, 'sentinel' | 'cluster'>;

/** Opens stores on `where()` (known once the servers are up), each closed by closeAll(). */
export function storeOpener(where: () => Where) {
  const opened: TokenStore[] = [];
  const prefixOf = new Map<TokenStore, string>();
  const open = (options: Partial<RedisTokenStoreOptions> = {}): RedisTokenStore => {
    const prefix = options.prefix ?? `tollgate-ha:${randomUUID()}:`;
    const store = new RedisTokenStore({ ...where(), ...options, prefix });
    opened.push(store);
    prefixOf.set(store, prefix);
    return store;
  };
  return {
    open,
    // Another instance on the same servers and prefix, as a second tollgate process would be.
    reopen: (store: TokenStore) => open({ prefix: prefixOf.get(store)! }),
    closeAll: async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}

/** The store contract suites, as every adapter runs them. */
export function runContracts(name: string, opener: ReturnType<typeof storeOpener>): void {
  const open = async () => opener.open();
  const reopen = async (store: RedisTokenStore) => opener.reopen(store);
  tokenRecordsContract(name, open, reopen, { expiresItself: true, uncountedClientRevocation: true });
  replayClaimsContract(name, open);
  failureCountersContract(name, open, reopen, { expiresItself: true });
  storeLifecycleContract(name, open);
  signingKeyRecordsContract(name, open, reopen);
}

/** A full app on a store: a service client (svc) and a resource server allowed to introspect (rs). */
export async function appOn(store: TokenStore): Promise<TestApp> {
  return buildTestApp({
    config: 'issuer: https://auth.test\nkeys: { dir: ./keys }\nstore: { kind: memory }\n',
    clients: await registryYaml([client({ id: 'svc', secret: SVC, audiences: [API] }), client({ id: 'rs', secret: RS, audiences: [API], introspect: true })]),
    store,
    // Redis expires records by its own clock: the app's must be today.
    clock: new TestClock(Date.now()),
  });
}

export const asSvc = { client: 'svc', secret: SVC };
export const asRs = { client: 'rs', secret: RS };

export async function issue(t: TestApp): Promise<string> {
  const res = await tokenRequest(t.app, asSvc);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ access_token: string }>().access_token;
}

export async function activeOf(t: TestApp, token: string): Promise<boolean> {
  const res = await introspect(t.app, token, asRs);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ active: boolean }>().active;
}

/** A 503 as the store's failure makes it: temporarily_unavailable, Retry-After, nothing else. */
export function expectUnavailable(res: LightMyRequestResponse): void {
  expect(res.statusCode, res.body).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  const body = res.json<Record<string, unknown>>();
  expect(body.error).toBe('temporarily_unavailable');
  expect(body).not.toHaveProperty('access_token');
  expect(body).not.toHaveProperty('active');
}

/**
 * Drives the app through a failover that `crash` starts, until a token is issued again: every
 * answer meanwhile is a 200 that is true or a 503 with Retry-After. `revoked` must never be
 * active, `kept` never inactive; each token issued during the switch must have been recorded.
 * Resolves how many requests got 503.
 */
export async function throughFailover(t: TestApp, crash: () => Promise<void>, tokens: { revoked: string; kept: string }, deadlineMs = 60_000): Promise<number> {
  await crash();
  const issued: string[] = [];
  let unavailable = 0;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no token issued within ${deadlineMs} ms of the crash`);
    const [token, revokedState, keptState] = await Promise.all([
      tokenRequest(t.app, asSvc),
      introspect(t.app, tokens.revoked, asRs),
      introspect(t.app, tokens.kept, asRs),
    ]);
    for (const res of [token, revokedState, keptState]) {
      if (res.statusCode === 503) {
        expectUnavailable(res);
        unavailable++;
      } else expect(res.statusCode, res.body).toBe(200);
    }
    if (revokedState.statusCode === 200) expect(revokedState.json()).toEqual({ active: false });
    if (keptState.statusCode === 200) expect(keptState.json<{ active: boolean }>().active).toBe(true);
    if (token.statusCode === 200) {
      issued.push(token.json<{ access_token: string }>().access_token);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // A few more, now that the store is back: each is answered and recorded. The client may still
  // be settling on the new primary (a Sentinel's switch-master message makes it reconnect once
  // more), so a request may yet get a 503, and is asked again.
  const settled = async (ask: () => Promise<LightMyRequestResponse>): Promise<LightMyRequestResponse> => {
    for (;;) {
      const res = await ask();
      if (res.statusCode !== 503 || Date.now() > deadline) return res;
      expectUnavailable(res);
      unavailable++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const activeNow = async (token: string): Promise<boolean> => {
    const res = await settled(() => introspect(t.app, token, asRs));
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ active: boolean }>().active;
  };
  for (let i = 0; i < 3; i++) {
    const res = await settled(() => tokenRequest(t.app, asSvc));
    expect(res.statusCode, res.body).toBe(200);
    issued.push(res.json<{ access_token: string }>().access_token);
  }
  for (const token of issued) expect(await activeNow(token)).toBe(true);
  expect(await activeNow(tokens.revoked)).toBe(false);
  expect(await activeNow(tokens.kept)).toBe(true);
  return unavailable;
}

export { revoke };
