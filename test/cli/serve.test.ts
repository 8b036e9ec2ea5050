import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, FORM, hashOf, tempDir, writeFixture } from '../helpers.js';
import { ecPem, ODD_PEM_FORMS } from '../keys/odd-pem.js';
import { startServerProcess } from '../server-process.js';
import { expectUserError, tollgate } from './run-cli.js';

const ISSUER = 'http://127.0.0.1';
const config = (port: number, store: string) => `issuer: ${ISSUER}
listen: { host: 127.0.0.1, port: ${port} }
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: ${store}
`;

let HASH = '';
beforeAll(async () => {
  HASH = await hashOf('svc-secret-0123456789abcdefghijklmnopqrst');
});

describe('tollgate serve', () => {
  it('serves a token to a client the CLI added, with the secret it printed, and exits 0 on SIGTERM', async () => {
    const f = writeFixture({
      config: config(0, `{ kind: sqlite, path: ${join(tempDir(), 'tokens.db')} }`),
      clients: '# The registry, kept by `tollgate client`.\nclients: []\n',
    });
    // ":" and " " must be form-urlencoded in Basic credentials (RFC 6749 §2.3.1): a real test of the encoding.
    const clientId = 'team:ledger sync';
    const add = await tollgate(['client', 'add', clientId, '--scope', 'ledger:read ledger:write', '--audience', 'https://api.test', '--ttl', '10m', '--config', f.configFile], { cwd: f.dir });
    expect(add.code).toBe(0);
    const secret = add.stdout.trim();

    const server = await startServerProcess(f.configFile);
    const res = await fetch(`${server.url}/oauth2/token`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic(clientId, secret) },
      body: 'grant_type=client_credentials&scope=ledger%3Aread',
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'ledger:read' });
    const token = body.access_token as string;
    expect(token.split('.')).toHaveLength(3);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)), {
      issuer: ISSUER,
      audience: 'https://api.test',
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ sub: clientId, client_id: clientId, scope: 'ledger:read' });
    // A client may introspect its own token; the summary of it is written when the server stops.
    const introspected = await fetch(`${server.url}/oauth2/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic(clientId, secret) }, body: `token=${token}` });
    expect(await introspected.json()).toMatchObject({ active: true });

    expect(await server.stop('SIGTERM')).toBe(0);
    const summaries = server
      .stdout()
      .split('\n')
      .filter((l) => l.includes('"introspection.summary"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(summaries).toEqual([expect.objectContaining({ client_id: clientId, active: 1, inactive: 0 })]);
    expect(server.stdout()).not.toContain(secret);
    expect(server.stdout()).not.toContain(token);
    expect(server.stderr()).toBe('');
  });

  it('refuses a broken registry: exit 1, one line naming the file and the path, no stack trace', async () => {
    const f = writeFixture({
      config: config(0, '{ kind: memory }'),
      clients: `clients:\n  - client_id: svc\n    client_secret: hunter2\n    audiences: [https://api.test]\n  - client_id: svc\n    secrets: [{ hash: "${HASH}" }]\n    audiences: [https://api.test]\n`,
    });
    const run = await tollgate(['serve', '--config', f.configFile], { cwd: f.dir });
    expectUserError(run, /clients\.yaml:3: clients\[0\]\.client_secret: plaintext secrets are refused/);
    expect(run.stderr).toContain(f.clientsFile);
    expect(run.stderr).toMatch(/and 1 more: run tollgate config check/);
  });

  it('refuses a broken config: exit 1, one line', async () => {
    const f = writeFixture({ config: config(0, '{ kind: memory }').replace(ISSUER, `${ISSUER}/`), clients: 'clients: []\n' });
    expectUserError(await tollgate(['serve', '--config', f.configFile], { cwd: f.dir }), /tollgate\.yaml:1: issuer: /);
  });

  it('refuses a key folder whose only key is a symbolic link to a missing file: exit 1, one line, not ENOENT as an unexpected error', async () => {
    const f = writeFixture({ config: config(0, '{ kind: memory }'), clients: `clients:\n  - client_id: svc\n    secrets: [{ hash: "${HASH}" }]\n    audiences: [https://api.test]\n` });
    mkdirSync(f.keysDir);
    symlinkSync('../secret/signing.pem', join(f.keysDir, 'signing.pem'));
    const run = await tollgate(['serve', '--config', f.configFile], { cwd: f.dir });
    expectUserError(run, /keys\/signing\.pem: is a symbolic link to a missing file \(\.\.\/secret\/signing\.pem\), and no other key in the folder loads$/m);
    // No key was generated beside it.
    expect(readdirSync(f.keysDir)).toEqual(['signing.pem']);
  });

  it.each(ODD_PEM_FORMS)('starts with a key file with %s, rather than exiting 2 (unexpected error)', async (_what, odd) => {
    const f = writeFixture({ config: config(0, '{ kind: memory }'), clients: 'clients: []\n' });
    mkdirSync(f.keysDir);
    writeFileSync(join(f.keysDir, 'odd.pem'), odd(ecPem()), { mode: 0o600 });
    const server = await startServerProcess(f.configFile);
    const { keys } = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kty: string }[] };
    expect(keys.map((k) => k.kty)).toEqual(['EC']);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  describe('on a port already taken', () => {
    let taken: Server;
    beforeAll(async () => {
      taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    it('exits 1 with one line naming the address', async () => {
      const port = (taken.address() as { port: number }).port;
      const f = writeFixture({
        config: config(port, '{ kind: memory }'),
        clients: `clients:\n  - client_id: svc\n    secrets: [{ hash: "${HASH}" }]\n    audiences: [https://api.test]\n`,
      });
      expectUserError(await tollgate(['serve', '--config', f.configFile], { cwd: f.dir }), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    });
  });
});
