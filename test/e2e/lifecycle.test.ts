import { copyFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/server/log.js';
import { startServer } from '../../src/server/start-server.js';
import { API, client, registryYaml } from '../builders.js';
import { LogCapture, tempDir, writeFixture } from '../helpers.js';
import { startServerProcess } from '../server-process.js';
import { makePki } from '../tls-fixtures.js';

const SECRET = 'life-secret-0123456789abcdefghijklmnopqrs';

describe('shutdown', () => {
  it('finishes a request in flight on SIGTERM, then exits 0', async () => {
    const f = writeFixture({
      config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: sqlite, path: ${join(tempDir(), 'db')} }
`,
      clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
    });
    const server = await startServerProcess(f.configFile);
    const { port } = new URL(server.url);
    const body = 'grant_type=client_credentials';
    const socket = netConnect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    // Headers and half the body now; the rest after SIGTERM has arrived.
    socket.write(
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}\r\n` +
        `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    const exit = server.stop('SIGTERM');
    await server.waitForOutput(/"event":"server.stopping"/);
    // write, not end: a client that half-closes its side gets its connection closed by Node.
    socket.write(body.slice(10));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"access_token"');
    expect(await exit).toBe(0);
  });
});

describe('TLS', () => {
  it('serves HTTPS and takes a new certificate on reload without a restart', async () => {
    const pki = makePki(tempDir());
    const dir = tempDir();
    copyFileSync(pki.file('server.pem'), join(dir, 'cert.pem'));
    copyFileSync(pki.file('server.key'), join(dir, 'key.pem'));
    const f = writeFixture({
      config: `issuer: https://127.0.0.1
listen: { host: 127.0.0.1, port: 0, tls: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }
keys: { dir: ./keys }
store: { kind: memory }
`,
      clients: 'clients: []\n',
    });
    const logs = new LogCapture();
    const server = await startServer(loadConfig(f.configFile), createLogger('info', logs));
    const { port } = new URL(server.url);
    const peerFingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.end();
        });
        s.on('error', reject);
      });
    try {
      expect(server.url).toMatch(/^https:/);
      const before = await peerFingerprint();
      // A renewed certificate (here: another one the same CA issued) replaces the files.
      copyFileSync(pki.file('edge.pem'), join(dir, 'cert.pem'));
      copyFileSync(pki.file('edge.key'), join(dir, 'key.pem'));
      server.reloadTls();
      const after = await peerFingerprint();
      expect(after).not.toBe(before);
      expect(logs.events('tls.reloaded')).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
