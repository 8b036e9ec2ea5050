import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer } from '../../src/server/start-server.js';
import { API, client, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp, LogCapture, writeFixture } from '../helpers.js';

const SECRET = 'proxy-secret-0123456789abcdefghijklmnopq';

async function app(trustProxy: string) {
  return buildTestApp({
    config: `issuer: https://auth.test
keys: { dir: ./keys }
store: { kind: memory }
trust_proxy: ${trustProxy}
`,
    clients: await registryYaml([client({ id: 'inside', secret: SECRET, audiences: [API], allowed_ips: ['10.0.0.0/8'] })]),
  });
}

const ask = (t: Awaited<ReturnType<typeof app>>, remoteAddress: string, forwardedFor?: string) =>
  tokenRequest(t.app, { client: 'inside', secret: SECRET, ip: remoteAddress, ...(forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {}) });

describe('trust_proxy', () => {
  it('takes the client address from X-Forwarded-For only when a listed proxy sends it', async () => {
    const t = await app('[127.0.0.1]');
    expect((await ask(t, '127.0.0.1', '10.1.2.3')).statusCode).toBe(200);
    // Anyone else's X-Forwarded-For is ignored: the peer address counts, and it is not allowed.
    expect((await ask(t, '192.0.2.5', '10.1.2.3')).statusCode).toBe(401);
    // The proxy itself is not an allowed address.
    expect((await ask(t, '127.0.0.1')).statusCode).toBe(401);
    expect(t.logs.events('token.issued').at(-1)).toMatchObject({ ip: '10.1.2.3' });
  });

  it('ignores X-Forwarded-For entirely when empty (the default)', async () => {
    const t = await app('[]');
    expect((await ask(t, '127.0.0.1', '10.1.2.3')).statusCode).toBe(401);
    expect((await ask(t, '10.9.9.9', '192.0.2.1')).statusCode).toBe(200);
  });
});

describe('listening beyond loopback', () => {
  it('logs a warning at start when there is no TLS', async () => {
    const f = writeFixture({
      config: `issuer: https://auth.test
listen: { host: 0.0.0.0, port: 0 }
keys: { dir: ./keys }
store: { kind: memory }
`,
      clients: 'clients: []\n',
    });
    const logs = new LogCapture();
    const server = await startServer(loadConfig(f.configFile), createLogger('info', logs));
    await server.close();
    expect(logs.text).toMatch(/"level":"warn".*listening beyond loopback without TLS/);
  });
});
