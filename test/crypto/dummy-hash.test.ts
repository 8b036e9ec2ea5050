import { writeFileSync } from 'node:fs';
import argon2 from 'argon2';
import { describe, expect, it } from 'vitest';
import { argon2Parameters, DummyHash } from '../../src/crypto/dummy-hash.js';
import { ARGON2_OPTIONS } from '../../src/crypto/secrets.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { API, client, registryYaml } from '../builders.js';
import { buildTestApp } from '../helpers.js';

const DEFAULT = { memoryCost: ARGON2_OPTIONS.memoryCost, timeCost: ARGON2_OPTIONS.timeCost, parallelism: ARGON2_OPTIONS.parallelism };
const COSTLY = { memoryCost: 65_536, timeCost: 3, parallelism: 4 };

const costlyHash = argon2.hash('costly-secret-0123456789abcdefghijklmnop', { type: argon2.argon2id, ...COSTLY });
const registry = async (withCostly: boolean) =>
  registryYaml([
    client({ id: 'plain', secret: 'plain-secret-0123456789abcdefghijklmnopq', audiences: [API] }),
    ...(withCostly ? [client({ id: 'costly', secrets: [{ hash: await costlyHash }], audiences: [API] })] : []),
  ]);

describe('the dummy hash for unknown clients', () => {
  it('reads the parameters of an argon2 hash', async () => {
    expect(argon2Parameters(await costlyHash)).toEqual(COSTLY);
    expect(argon2Parameters('not-a-hash')).toBeUndefined();
  });

  it('is made with the parameters of the costliest registered hash, and again after every registry reload', async () => {
    const verifier = new SecretVerifier();
    const t = await buildTestApp({ clients: await registry(true), deps: { verifier } });
    expect(verifier.dummy.parameters).toEqual(COSTLY);
    expect(argon2Parameters(await verifier.dummy.get())).toEqual(COSTLY);

    writeFileSync(t.fixture.clientsFile, await registry(false));
    expect(t.registry.reload()).toBe(true);
    expect(verifier.dummy.parameters).toEqual(DEFAULT);
    expect(argon2Parameters(await verifier.dummy.get())).toEqual(DEFAULT);

    writeFileSync(t.fixture.clientsFile, await registry(true));
    expect(t.registry.reload()).toBe(true);
    expect(argon2Parameters(await verifier.dummy.get())).toEqual(COSTLY);
  });

  it("takes tollgate's own parameters for a registry without secrets, and falls back to them for parameters argon2 refuses", async () => {
    const dummy = new DummyHash();
    expect(argon2Parameters(await dummy.follow([]))).toEqual(DEFAULT);
    // m=1 is below argon2's minimum: such a hash never verifies, and must not break the dummy.
    const broken = '$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
    const client = { clientId: 'x', secrets: [{ hash: broken }] } as never;
    expect(argon2Parameters(await dummy.follow([client]))).toEqual(DEFAULT);
  });
});
