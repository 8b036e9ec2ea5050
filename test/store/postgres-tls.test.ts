import { chownSync, copyFileSync, chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTokenStore } from '../../src/store/postgres-token-store.js';
import { tempDir } from '../helpers.js';
import { makeCertificate, makePki, type Pki } from '../tls-fixtures.js';
import { canRunOwnServers, initPrimary, type OwnServer, postgresTempDir, removeDir, startServer, stopServer } from './postgres-helpers.js';
import { requireOrSkip } from './redis-helpers.js';

// A server of this file's own with TLS: its certificate names DNS:localhost only and is issued by
// the test CA, so each sslmode can be seen to check what it promises.
const available = requireOrSkip(canRunOwnServers(), 'PostgreSQL server programs (initdb) run as the postgres user');

let root = '';
let server: OwnServer | undefined;
let pki: Pki;
const opened: PostgresTokenStore[] = [];

describe.skipIf(!available)('PostgreSQL store over TLS', () => {
  beforeAll(async () => {
    pki = makePki(tempDir('tollgate-pg-pki-'));
    makeCertificate(pki, 'dbserver', { subj: '/CN=localhost', san: 'DNS:localhost' });
    root = postgresTempDir('tollgate-pg-tls-');
    // The server reads its key only when the postgres user owns it and no one else can.
    const { uid, gid } = statSync(root);
    for (const [from, to] of [
      ['dbserver.pem', 'server.crt'],
      ['dbserver.key', 'server.key'],
    ] as const) {
      copyFileSync(pki.file(from), join(root, to));
      chownSync(join(root, to), uid, gid);
      chmodSync(join(root, to), 0o600);
    }
    server = await initPrimary(root, { ssl: 'on', ssl_cert_file: `'${join(root, 'server.crt')}'`, ssl_key_file: `'${join(root, 'server.key')}'` });
    await startServer(server);
  }, 60_000);

  afterAll(async () => {
    for (const store of opened) await store.close();
    if (server !== undefined) await stopServer(server, 'SIGKILL');
    if (root !== '') removeDir(root);
  });

  function open(host: string, query: string): PostgresTokenStore {
    const store = new PostgresTokenStore({ url: `postgres://postgres:tls-pw-secret@${host}:${server!.port}/postgres?${query}` });
    opened.push(store);
    return store;
  }
  const sslInUse = (store: PostgresTokenStore) =>
    store.read(async (sql) => (await sql.unsafe<{ ssl: boolean }[]>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]?.ssl);
  const failure = async (store: PostgresTokenStore): Promise<string> =>
    store.ping().then(
      () => 'no error',
      (e: Error) => e.message,
    );

  it('verify-full with the CA file: encrypted, and the token store works', async () => {
    const store = open('localhost', `sslmode=verify-full&sslrootcert=${pki.file('ca.pem')}`);
    await store.ping();
    expect(await sslInUse(store)).toBe(true);
    expect(await store.claimOnce('tls-claim', Date.now() + 60_000, Date.now())).toBe(true);
  });

  it('verify-full refuses a certificate from another CA, and one that does not name the host; verify-ca checks only the chain', async () => {
    const otherCa = await failure(open('localhost', `sslmode=verify-full&sslrootcert=${pki.file('other-ca.pem')}`));
    expect(otherCa).toMatch(/certificate/i);
    const wrongName = await failure(open('127.0.0.1', `sslmode=verify-full&sslrootcert=${pki.file('ca.pem')}`));
    expect(wrongName).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list|does not match/);
    const chainOnly = open('127.0.0.1', `sslmode=verify-ca&sslrootcert=${pki.file('ca.pem')}`);
    await chainOnly.ping();
    expect(await sslInUse(chainOnly)).toBe(true);
    for (const message of [otherCa, wrongName]) expect(message).not.toContain('tls-pw-secret');
  });

  it('require encrypts without checking the certificate; disable does not encrypt', async () => {
    const required = open('127.0.0.1', 'sslmode=require');
    expect(await sslInUse(required)).toBe(true);
    const disabled = open('127.0.0.1', 'sslmode=disable');
    expect(await sslInUse(disabled)).toBe(false);
  });

  it('refuses a CA file it cannot read, naming the file', () => {
    expect(() => open('localhost', 'sslmode=verify-full&sslrootcert=/nonexistent/ca.pem')).toThrow(/\/nonexistent\/ca\.pem: store\.url: cannot read the store's sslrootcert: ENOENT/);
  });
});
