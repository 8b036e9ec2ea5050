import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseKeyFile, serializeKeyFile } from '../../src/keys/key-file.js';
import { hashOf, writeFixture, type Fixture } from '../helpers.js';
import { ecPem, ODD_PEM_FORMS } from '../keys/odd-pem.js';
import { startServerProcess } from '../server-process.js';
import { lines, tollgateInProcess } from './run-cli.js';

const CONFIG = `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
`;
let clients = '';
beforeAll(async () => {
  clients = `clients:\n  - client_id: svc\n    secrets: [{ hash: "${await hashOf('svc-secret-0123456789abcdefghijklmnopqrst')}" }]\n    audiences: [https://api.test]\n`;
});

const keysList = (f: Fixture) => tollgateInProcess(['keys', 'list', '--config', f.configFile], { cwd: f.dir });

/** The RFC 7638 thumbprint of the public half of a PEM private key, as a resource server would compute it. */
async function thumbprint(pemFile: string): Promise<string> {
  const { kty, n, e } = await exportJWK(createPublicKey(readFileSync(pemFile, 'utf8')));
  return calculateJwkThumbprint({ kty: kty!, n: n!, e: e! }, 'sha256');
}

describe('keys list', () => {
  it('says so, exit 0, when the key directory is empty or missing', async () => {
    const f = writeFixture({ config: CONFIG, clients });
    const run = await keysList(f);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^no keys in .*keys; serve generates one on first start\n$/);
    expect(run.code).toBe(0);
  });

  it('lists the key the server generated, by its RFC 7638 thumbprint, as the signing key', async () => {
    const f = writeFixture({ config: CONFIG, clients });
    const server = await startServerProcess(f.configFile);
    const started = JSON.parse(lines(server.stdout()).find((l) => l.includes('"server.started"'))!) as { signing_kid: string };
    expect(await server.stop()).toBe(0);

    const [file, ...others] = readdirSync(f.keysDir);
    expect(others).toEqual([]);
    const pem = join(f.keysDir, file!);
    expect(statSync(pem).mode & 0o777).toBe(0o600);
    const kid = await thumbprint(pem);
    expect(file).toBe(`${kid}.pem`);
    expect(started.signing_kid).toBe(kid);

    const run = await keysList(f);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const [header, row, ...rest] = lines(run.stdout);
    expect(rest).toEqual([]);
    expect(header!.split(/\s+/)).toEqual(['KID', 'CREATED', 'SIGNS_FROM', 'KEY', 'USE', 'PRUNABLE_FROM', 'FILE']);
    const { created, signsFrom } = parseKeyFile(readFileSync(pem, 'utf8'));
    expect(row!.split(/\s+/)).toEqual([kid, new Date(created!).toISOString(), new Date(signsFrom!).toISOString(), 'RSA-2048', 'signing', '-', pem]);

    // A newer key, published for longer than publish_before_use (10 min by default), takes over
    // signing; the older one stays, published, until its last token (tokens.ttl 900 s) expires.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const newer = join(f.keysDir, 'added.pem');
    writeFileSync(newer, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    // The server's key is given times of an hour ago; the plain PEM file is counted from its
    // mtime (and `keys list` writes that into it).
    const hourAgo = Date.now() - 3_600_000;
    writeFileSync(pem, serializeKeyFile({ privateKey: createPrivateKey(readFileSync(pem, 'utf8')), created: hourAgo, signsFrom: hourAgo + 600_000 }));
    const twentyMinutesAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 1_200_000);
    utimesSync(newer, twentyMinutesAgo, twentyMinutesAgo);
    const rows = lines((await keysList(f)).stdout).slice(1).map((r) => r.split(/\s+/));
    expect(rows.map((r) => [r[0], r[4], r[5]])).toEqual([
      [await thumbprint(newer), 'signing', '-'],
      [kid, 'published', new Date(twentyMinutesAgo.getTime() + 600_000 + 900_000).toISOString()],
    ]);
  });
});

describe('keys list and odd key files', () => {
  it.each(ODD_PEM_FORMS)('lists a key file with %s, exit 0 rather than 2 (unexpected error)', async (_what, odd) => {
    const f = writeFixture({ config: CONFIG, clients });
    mkdirSync(f.keysDir);
    const pem = ecPem();
    writeFileSync(join(f.keysDir, 'odd.pem'), odd(pem), { mode: 0o600 });
    const run = await keysList(f);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { kty, crv, x, y } = await exportJWK(createPublicKey(pem));
    const kid = await calculateJwkThumbprint({ kty: kty!, crv: crv!, x: x!, y: y! }, 'sha256');
    expect(lines(run.stdout)[1]!.split(/\s+/).slice(0, 5)).toEqual([kid, expect.any(String), expect.any(String), 'EC-P256', 'signing']);
  });

  it('warns of a symbolic link to a missing file and lists the other keys; refuses it in one line when it is the only key', async () => {
    const f = writeFixture({ config: CONFIG, clients });
    mkdirSync(f.keysDir);
    symlinkSync('/nonexistent/gone.pem', join(f.keysDir, 'gone.pem'));
    const alone = await keysList(f);
    expect(alone.stderr).toBe(`tollgate: ${join(f.keysDir, 'gone.pem')}: is a symbolic link to a missing file (/nonexistent/gone.pem), and no other key in the folder loads\n`);
    expect(alone.code).toBe(1);

    writeFileSync(join(f.keysDir, 'a.pem'), ecPem(), { mode: 0o600 });
    const run = await keysList(f);
    expect(run.stderr).toBe(`warning: ${join(f.keysDir, 'gone.pem')}: skipped: a symbolic link to a missing file (/nonexistent/gone.pem)\n`);
    expect(lines(run.stdout)).toHaveLength(2);
    expect(run.code).toBe(0);
  });
});
