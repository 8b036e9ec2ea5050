import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { API, client, registryYaml } from '../builders.js';
import { writeFixture, type Fixture } from '../helpers.js';
import { ecPem, ODD_PEM_FORMS } from '../keys/odd-pem.js';
import { httpClient, startServerProcess, type ServerProcess } from '../server-process.js';

const SECRET = 'reload-secret-0123456789abcdefghijklmnopq';
let CLIENTS = '';
beforeAll(async () => {
  CLIENTS = await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]);
});

const CONFIG = `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys, publish_before_use: 0s }
store: { kind: memory }
log: { level: info }
`;

const kidOf = async (pem: string) => calculateJwkThumbprint(await exportJWK(createPublicKey(pem)), 'sha256');
const count = (out: string, event: string) => out.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;

async function jwksKids(server: ServerProcess): Promise<string[]> {
  const res = await fetch(`${server.url}/.well-known/jwks.json`);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}

async function rejectedReloads(server: ServerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found: Record<string, number> = {};
  for (const m of text.matchAll(/^tollgate_reloads_rejected_total\{source="(\w+)"\} (\d+)$/gm)) found[m[1]!] = Number(m[2]);
  return found;
}

async function start(): Promise<{ f: Fixture; server: ServerProcess; client: ReturnType<typeof httpClient> }> {
  const f = writeFixture({ config: CONFIG, clients: CLIENTS });
  mkdirSync(f.keysDir);
  writeFileSync(join(f.keysDir, 'first.pem'), ecPem(), { mode: 0o600 });
  const server = await startServerProcess(f.configFile);
  return { f, server, client: httpClient(() => server.url) };
}

describe.concurrent('a running server and changes it cannot take', () => {
  it('takes key files Node reads and jose alone did not, instead of ending the process', async () => {
    const { f, server, client } = await start();
    let reloads = 0;
    for (const [i, [, odd]] of ODD_PEM_FORMS.entries()) {
      const pem = ecPem();
      writeFileSync(join(f.keysDir, `odd-${i}.pem`), odd(pem), { mode: 0o600 });
      reloads++;
      await server.waitForOutput(new RegExp(`("event":"keys.reloaded"[\\s\\S]*){${reloads}}`));
      expect(await jwksKids(server)).toContain(await kidOf(pem));
      await client.issue('svc', SECRET);
    }
    expect(server.stdout()).not.toMatch(/keys.rejected/);
    expect(await server.stop()).toBe(0);
  });

  it('logs a key folder it can no longer read, keeps its keys, and counts the refusal', async () => {
    const { f, server, client } = await start();
    const kids = await jwksKids(server);
    renameSync(f.keysDir, `${f.keysDir}.away`);
    writeFileSync(f.keysDir, '');
    const [line] = await server.waitForOutput(/.*"event":"keys.rejected".*/);
    expect(JSON.parse(line) as unknown).toMatchObject({ level: 'error', problem: `${f.keysDir}: cannot read the key directory: ENOTDIR` });
    expect(await jwksKids(server)).toEqual(kids);
    await client.issue('svc', SECRET);
    expect(await rejectedReloads(server)).toEqual({ registry: 0, keys: 1 });

    unlinkSync(f.keysDir);
    renameSync(`${f.keysDir}.away`, f.keysDir);
    writeFileSync(join(f.keysDir, 'second.pem'), ecPem(), { mode: 0o600 });
    await server.waitForOutput(/"event":"keys.reloaded"/);
    expect(await jwksKids(server)).toHaveLength(2);
    expect(count(server.stdout(), 'keys.rejected')).toBe(1);
    expect(await server.stop()).toBe(0);
  });

  it('counts refused reloads of the registry and of the keys in tollgate_reloads_rejected_total', async () => {
    const { f, server, client } = await start();
    expect(await rejectedReloads(server)).toEqual({ registry: 0, keys: 0 });

    writeFileSync(join(f.keysDir, 'broken.pem'), 'not a key\n');
    await server.waitForOutput(/"event":"keys.rejected"/);
    writeFileSync(f.clientsFile, 'clients: [ {\n');
    await server.waitForOutput(/"event":"registry.rejected"/);
    expect(await rejectedReloads(server)).toEqual({ registry: 1, keys: 1 });

    // Both go on serving what they had.
    await client.issue('svc', SECRET);
    expect(await jwksKids(server)).toHaveLength(1);
    expect(await server.stop()).toBe(0);
  });
});
