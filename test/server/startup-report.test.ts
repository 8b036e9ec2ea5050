import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer } from '../../src/server/start-server.js';
import { DEMO_CLIENT, demoClients, issuerWarnings } from '../../src/server/startup-report.js';
import { parseRedisUrl } from '../../src/shared/redis-url.js';
import { API, client, registryYaml } from '../builders.js';
import { LogCapture, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { REDIS_URL, testPrefix } from '../store/redis-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEMO_REGISTRY = readFileSync(join(ROOT, 'config/clients.yaml'), 'utf8');

function configWith(issuer: string, listen: string) {
  const f = writeFixture({ config: `issuer: ${issuer}\nlisten: ${listen}\nkeys: { dir: ./keys }\nstore: { kind: memory }\n`, clients: 'clients: []\n' });
  return loadConfig(f.configFile);
}

async function started(config: string, clients: string, env: (f: Fixture) => NodeJS.ProcessEnv = () => ({}), keepOpen = false) {
  const f = writeFixture({ config, clients });
  const logs = new LogCapture();
  const server = await startServer(loadConfig(f.configFile, { env: env(f) }), createLogger('info', logs));
  if (!keepOpen) await server.close();
  const lines = () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { f, server, logs, lines: lines(), current: lines };
}

describe('the start of a server', () => {
  // It said only "tollgate listening" with a count of clients: not which files, keys or store.
  it('says in one line what it loaded: config file, registry and client count, keys and which signs, store and where, URL', async () => {
    const dbDir = tempDir();
    const { f, lines } = await started(
      `issuer: https://auth.example.com\nlisten: { host: 127.0.0.1, port: 0 }\nkeys: { dir: ./keys }\nstore: { kind: sqlite, path: ${dbDir}/t.db }\n`,
      await registryYaml([client({ id: 'a', secret: 'a-secret-0123456789abcdefghijklmnopqrstuvwxyz', audiences: [API] })]),
    );
    const line = lines.find((l) => l.event === 'server.started')!;
    expect(line).toMatchObject({
      level: 'info',
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      issuer: 'https://auth.example.com',
      config: f.configFile,
      clients_file: f.clientsFile,
      clients: 1,
      keys_dir: f.keysDir,
      kids: [expect.any(String)],
      store: 'sqlite',
      store_at: `${dbDir}/t.db`,
    });
    expect(line.signing_kid).toBe((line.kids as string[])[0]);
    expect(line.msg).toContain(`${line.url as string}`);
    expect(line.msg).toContain(`1 client from ${f.clientsFile}`);
    expect(line.msg).toContain(`${line.signing_kid as string} signs`);
    // https issuer, loopback listener: a proxy in front, as it should be. No warning, no demo client.
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('names a Redis store without its password', async () => {
    const url = new URL(REDIS_URL);
    url.password = 's3cret-pw';
    const { lines } = await started(
      `issuer: https://auth.example.com\nlisten: { host: 127.0.0.1, port: 0 }\nkeys: { dir: ./keys }\nstore: { kind: redis, url: "${url.toString()}", prefix: "${testPrefix()}" }\n`,
      'clients: []\n',
    );
    const line = lines.find((l) => l.event === 'server.started')!;
    expect(line).toMatchObject({ store: 'redis', store_at: parseRedisUrl(REDIS_URL).display });
    expect(JSON.stringify(lines)).not.toContain('s3cret-pw');
  });

  // Loading the README's demo client (whose secret anyone can read) went unremarked.
  it('warns when the published demo client is loaded, at start and when a reload brings it in', async () => {
    const { f, lines } = await started('issuer: http://127.0.0.1:8080\nlisten: { host: 127.0.0.1, port: 0 }\nkeys: { dir: ./keys }\nstore: { kind: memory }\n', DEMO_REGISTRY);
    const warning = lines.find((l) => l.event === 'registry.demo_client');
    expect(warning).toMatchObject({ level: 'warn', file: f.clientsFile, client_ids: ['demo-service'] });
    expect(warning!.msg).toMatch(/published in the README.*tollgate client remove demo-service/);
    expect(JSON.stringify(lines)).not.toContain(DEMO_CLIENT.secret);

    const later = await started('issuer: http://127.0.0.1:8080\nlisten: { host: 127.0.0.1, port: 0 }\nkeys: { dir: ./keys }\nstore: { kind: memory }\n', 'clients: []\n', undefined, true);
    try {
      expect(later.lines.filter((l) => l.event === 'registry.demo_client')).toEqual([]);
      writeFileSync(later.f.clientsFile, DEMO_REGISTRY);
      expect(later.server.registry.reload()).toBe(true);
      await expect.poll(() => later.current().filter((l) => l.event === 'registry.demo_client')).toHaveLength(1);
    } finally {
      await later.server.close();
    }
  });

  it('warns when a loopback issuer is served beyond loopback (the container config without TOLLGATE_ISSUER)', async () => {
    const { lines } = await started(readFileSync(join(ROOT, 'deploy/docker/tollgate.yaml'), 'utf8'), 'clients: []\n', (f) => ({
      TOLLGATE_CLIENTS_FILE: f.clientsFile,
      TOLLGATE_LISTEN__HOST: '127.0.0.2',
      TOLLGATE_LISTEN__PORT: '0',
      TOLLGATE_KEYS__DIR: join(tempDir(), 'keys'),
      TOLLGATE_STORE__KIND: 'memory',
    }));
    expect(lines.filter((l) => l.event === 'config.issuer_mismatch')).toEqual([]);
    const exposed = await started(readFileSync(join(ROOT, 'deploy/docker/tollgate.yaml'), 'utf8'), 'clients: []\n', (f) => ({
      TOLLGATE_CLIENTS_FILE: f.clientsFile,
      TOLLGATE_LISTEN__PORT: '0',
      TOLLGATE_KEYS__DIR: join(tempDir(), 'keys'),
      TOLLGATE_STORE__KIND: 'memory',
    }));
    expect(exposed.lines.find((l) => l.event === 'config.issuer_mismatch')).toMatchObject({ level: 'warn', reason: 'loopback_issuer', issuer: 'http://127.0.0.1:8080' });
  });
});

describe('issuerWarnings', () => {
  it.each([
    ['https://auth.example.com', '{ host: 127.0.0.1, port: 8080 }', 'http://127.0.0.1:8080', []],
    ['https://auth.example.com', '{ host: 0.0.0.0, port: 8080 }', 'http://0.0.0.0:8080', []],
    ['http://127.0.0.1:8080', '{ host: 127.0.0.1, port: 8080 }', 'http://127.0.0.1:8080', []],
    ['http://localhost:8080', '{ host: 127.0.0.1, port: 8080 }', 'http://127.0.0.1:8080', []],
    ['http://127.0.0.1:8080', '{ host: 0.0.0.0, port: 8080 }', 'http://0.0.0.0:8080', ['loopback_issuer']],
    ['http://localhost:8080', '{ host: "::", port: 8080 }', 'http://[::]:8080', ['loopback_issuer']],
    ['http://127.0.0.1:8080', '{ host: 127.0.0.1, port: 9090 }', 'http://127.0.0.1:9090', ['port']],
    ['http://127.0.0.1', '{ host: 127.0.0.1, port: 0 }', 'http://127.0.0.1:41234', []],
    ['http://auth.example.com', '{ host: 127.0.0.1, port: 8080 }', 'http://127.0.0.1:8080', ['plain_http']],
    ['http://127.0.0.1:8080', '{ host: 10.0.0.5, port: 8080 }', 'http://10.0.0.5:8080', ['loopback_issuer']],
  ])('issuer %s, listen %s: %j', (issuer, listen, url, reasons) => {
    expect(issuerWarnings(configWith(issuer, listen), url).map((w) => w.fields.reason)).toEqual(reasons);
  });
});

describe('demoClients', () => {
  it('knows the demo client of config/clients.yaml, and its published secret', () => {
    expect(DEMO_REGISTRY).toContain(DEMO_CLIENT.hash);
    expect(DEMO_REGISTRY).toContain(DEMO_CLIENT.secret);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain(`${DEMO_CLIENT.clientId}:${DEMO_CLIENT.secret}`);
  });

  it('finds the demo hash under any id, and demo-service with the published secret hashed anew, but not a disabled one', async () => {
    const file = join(tempDir(), 'clients.yaml');
    const demoHash = [{ hash: DEMO_CLIENT.hash }];
    writeFileSync(
      file,
      await registryYaml([
        client({ id: 'copied', secrets: demoHash, audiences: [API] }),
        client({ id: 'demo-service', secret: DEMO_CLIENT.secret, audiences: [API] }),
        client({ id: 'renamed', secret: DEMO_CLIENT.secret, audiences: [API] }),
        client({ id: 'own', secret: 'another-secret-0123456789abcdefghijklmnop', audiences: [API] }),
        client({ id: 'off', secrets: demoHash, audiences: [API], disabled: true }),
      ]),
    );
    expect(await demoClients(loadRegistryFile(file, { defaultAudience: [] }).all())).toEqual(['copied', 'demo-service']);
  });
});
