import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import argon2 from 'argon2';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.js';
import { hashOf, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { makeRecord } from '../store/contract/token-records.js';
import { expectUserError, lines, tollgateInProcess, type CliRun } from './run-cli.js';

let HASH = '';
beforeAll(async () => {
  HASH = await hashOf('billing-secret-0123456789abcdefghijklmnopq');
});

/** A registry as an operator keeps it: comments above, inside and after entries, flow lists, a long quoted hash. */
const registry = () => `# Client registry for the CLI tests.
# Only argon2id hashes live here.
clients:
  # Billing: the first client.
  - client_id: billing-service
    secrets:
      # rotated yearly
      - hash: "${HASH}"
        expires_at: 2027-01-01T00:00:00Z # rotate before then
    scopes: [invoices:read, invoices:write]
    default_scopes: [invoices:read]
    audiences: [https://api.example.com]
    allowed_ips: [10.0.0.0/8, 192.0.2.7]

  # Reports: read only.
  - client_id: reports
    secrets:
      - hash: "${HASH}"
    scopes: [invoices:read]
    audiences: [https://api.example.com] # its only resource server
    disabled: true
# End of the registry.
`;

const CONFIG = `issuer: https://auth.test
clients_file: ./clients.yaml
tokens: { ttl: 900, audience: [] }
keys: { dir: ./keys }
store: { kind: memory }
`;

function fixture(config = CONFIG): Fixture {
  return writeFixture({ config, clients: registry() });
}

/** Runs tollgate in the fixture's folder, naming the config with --config. */
function cli(f: Fixture, args: string[], input?: string): Promise<CliRun> {
  return tollgateInProcess([...args, '--config', f.configFile], { cwd: f.dir, input });
}

const read = (f: Fixture) => readFileSync(f.clientsFile, 'utf8');
const clientsIn = (text: string) => (parse(text) as { clients: Record<string, unknown>[] }).clients;
const entry = (text: string, id: string) => clientsIn(text).find((c) => c.client_id === id);
const comments = (text: string) => lines(text).filter((l) => l.trim().startsWith('#') || l.includes(' # ')).map((l) => l.slice(l.indexOf('#')));
/** The file's non-blank lines: yaml may add or drop a blank line, but every written line must stay as it was. */
const written = (text: string) => lines(text).filter((l) => l.trim() !== '');

describe('client add', () => {
  it('prints only the new secret, stores only its argon2id hash, and leaves the other entries as written (long hashes not refolded, flow lists not repadded)', async () => {
    const f = fixture();
    const before = read(f);
    const run = await cli(f, ['client', 'add', 'ledger', '--scope', 'a b', '--audience', 'https://api.test', '--ttl', '600']);
    expect(run.code).toBe(0);
    // Exactly one stdout line, the secret: 32 random bytes as base64url are 43 characters (256 bits).
    expect(run.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const secret = run.stdout.trim();
    expect(run.stderr).toMatch(/added client "ledger"/);
    expect(run.stderr).not.toContain(secret);

    const after = read(f);
    expect(after).not.toContain(secret);
    const added = entry(after, 'ledger') as { secrets: { hash: string }[] };
    expect(added).toEqual({
      client_id: 'ledger',
      secrets: [{ hash: expect.stringMatching(/^\$argon2id\$v=19\$/) }],
      scopes: ['a', 'b'],
      audiences: ['https://api.test'],
      token_ttl: 600,
    });
    expect(await argon2.verify(added.secrets[0]!.hash, secret)).toBe(true);

    // Every comment, and every line of the other entries, is still there as written and in order;
    // the other entries mean exactly what they meant.
    expect(comments(after)).toEqual(comments(before));
    expect(written(after).slice(0, written(before).length - 1)).toEqual(written(before).slice(0, -1));
    expect(clientsIn(after).slice(0, 2)).toEqual(clientsIn(before));
    expect(written(after).at(-1)).toBe('# End of the registry.');
  });

  it('takes durations for --ttl', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'add', 'svc', '--audience', 'https://api.test', '--ttl', '15m']);
    expect(run.code).toBe(0);
    expect(entry(read(f), 'svc')).toMatchObject({ token_ttl: 900 });
  });

  it('works as SECRET=$(tollgate client add x): stdout holds the secret alone, even beside a note', async () => {
    const f = fixture();
    // A colon needs percent-encoding in Basic auth, so tollgate adds a note: on stderr, not in the secret.
    const run = await cli(f, ['client', 'add', 'team:svc', '--audience', 'https://api.test', '--auth-method', 'client_secret_post']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/note: .*percent-encode/);
    expect(lines(run.stdout)).toHaveLength(1);
    const secret = run.stdout.replace(/\n$/, '');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(entry(read(f), 'team:svc')).toMatchObject({ auth_methods: ['client_secret_post'] });
  });

  it('gives each client a different secret', async () => {
    const f = fixture();
    const a = await cli(f, ['client', 'add', 'a', '--audience', 'https://api.test']);
    const b = await cli(f, ['client', 'add', 'b', '--audience', 'https://api.test']);
    expect(a.stdout).not.toBe(b.stdout);
  });

  it.each([
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--scope', 'a "quoted"'], /invalid scope/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--scope', 'back\\slash'], /invalid scope/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--ttl', '59'], /--ttl must be 60 to 86400/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--ttl', '86401'], /--ttl must be 60 to 86400/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--ttl', 'abc'], /--ttl must be 60 to 86400/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--ttl', '2d'], /--ttl must be 60 to 86400/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--auth-method', 'private_key_jwt'], /client add makes secret-based clients; register a private_key_jwt client in the registry file by hand/],
    [['client', 'add', 'svc', '--audience', 'https://api.test', '--auth-method', 'client_secret_jwt'], /unknown auth method "client_secret_jwt"/],
    [['client', 'add', 'svc', '--audience', 'has space'], /invalid audience/],
    [['client', 'add', 'caf\u00e9', '--audience', 'https://api.test'], /ID must be/],
    [['client', 'add', 'billing-service', '--audience', 'https://api.test'], /client "billing-service" already exists/],
  ])('refuses %j with one line and leaves the file byte for byte', async (args, message) => {
    const f = fixture();
    const before = read(f);
    const files = readdirSync(f.dir);
    expectUserError(await cli(f, args), message);
    expect(read(f)).toBe(before);
    expect(readdirSync(f.dir)).toEqual(files);
  });

  it('refuses a client without --audience when tokens.audience is empty, saying what to do', async () => {
    const f = fixture();
    const before = read(f);
    const run = await cli(f, ['client', 'add', 'svc', '--scope', 'a']);
    expectUserError(run, /--audience is required/);
    expect(run.stderr).toContain('tokens.audience');
    expect(read(f)).toBe(before);
  });

  it('adds a client without --audience when tokens.audience gives a default', async () => {
    const f = fixture(CONFIG.replace('audience: []', 'audience: [https://default.test]'));
    const run = await cli(f, ['client', 'add', 'svc']);
    expect(run.code).toBe(0);
    expect(entry(read(f), 'svc')).not.toHaveProperty('audiences');
  });

  it('refuses to edit a registry that is already broken, naming the problem', async () => {
    const f = writeFixture({ config: CONFIG, clients: 'clients:\n  - client_id: old\n    secret: hunter2\n    audiences: [x]\n' });
    const before = read(f);
    expectUserError(await cli(f, ['client', 'add', 'svc', '--audience', 'https://api.test']), /clients\.yaml:3: clients\[0\]\.secret: plaintext secrets are refused/);
    expect(read(f)).toBe(before);
  });

  it('creates the registry when the config names a file that does not exist yet', async () => {
    const f = fixture(CONFIG.replace('./clients.yaml', './new-clients.yaml'));
    const run = await cli(f, ['client', 'add', 'svc', '--audience', 'https://api.test']);
    expect(run.code).toBe(0);
    const text = readFileSync(`${f.dir}/new-clients.yaml`, 'utf8');
    expect(clientsIn(text).map((c) => c.client_id)).toEqual(['svc']);
  });
});

describe('client list', () => {
  it('shows a table of every client, never a hash', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'list']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const [header, billing, reports, ...rest] = lines(run.stdout);
    expect(rest).toEqual([]);
    expect(header!.split(/\s+/)).toEqual(['CLIENT_ID', 'STATUS', 'AUTH_METHODS', 'SCOPES', 'AUDIENCES', 'TTL', 'SECRETS']);
    expect(billing).toMatch(/^billing-service\s+enabled\s+client_secret_basic,client_secret_post\s+invoices:read invoices:write\s+https:\/\/api\.example\.com\s+-\s+expire[sd] 2027-01-01T00:00:00Z$/);
    expect(reports).toMatch(/^reports\s+disabled\s/);
    expect(run.stdout).not.toContain('$argon2id');
  });

  it('--json gives one JSON document', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'list', '--json']);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { clients: Record<string, unknown>[] };
    expect(doc.clients).toEqual([
      {
        client_id: 'billing-service',
        disabled: false,
        auth_methods: ['client_secret_basic', 'client_secret_post'],
        scopes: ['invoices:read', 'invoices:write'],
        default_scopes: ['invoices:read'],
        audiences: ['https://api.example.com'],
        secrets: [{ expires_at: '2027-01-01T00:00:00.000Z' }],
      },
      expect.objectContaining({ client_id: 'reports', disabled: true }),
    ]);
    expect(run.stdout).not.toContain('$argon2id');
  });

  it('says so on stderr when the registry is empty', async () => {
    const f = writeFixture({ config: CONFIG, clients: 'clients: []\n' });
    const run = await cli(f, ['client', 'list']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/no clients/);
    expect(JSON.parse((await cli(f, ['client', 'list', '--json'])).stdout)).toEqual({ clients: [] });
  });
});

describe('client disable, enable, remove', () => {
  it('disable and enable flip the entry and keep every comment and every other line', async () => {
    const f = fixture();
    const before = read(f);
    const disabled = await cli(f, ['client', 'disable', 'billing-service', '--registry-only']);
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toBe('');
    expect(disabled.stderr).toMatch(/disabled client "billing-service"/);
    const mid = read(f);
    expect(entry(mid, 'billing-service')).toMatchObject({ disabled: true });
    expect(comments(mid)).toEqual(comments(before));
    expect(entry(mid, 'reports')).toEqual(entry(before, 'reports'));

    const enabled = await cli(f, ['client', 'enable', 'reports']);
    expect(enabled.code).toBe(0);
    const after = read(f);
    expect(entry(after, 'reports')).not.toMatchObject({ disabled: true });
    expect(comments(after)).toEqual(comments(before));
    const { disabled: _, ...rest } = entry(before, 'reports')!;
    expect(entry(after, 'reports')).toEqual(rest);
    expect((JSON.parse((await cli(f, ['client', 'list', '--json'])).stdout) as { clients: { disabled: boolean }[] }).clients.map((c) => c.disabled)).toEqual([true, false]);
  });

  it('remove deletes the entry and keeps the other entries and their comments', async () => {
    const f = fixture();
    const before = read(f);
    const run = await cli(f, ['client', 'remove', 'reports', '--registry-only']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    const after = read(f);
    expect(clientsIn(after)).toEqual([entry(before, 'billing-service')]);
    // The entry's own comments (the one right above it, the one on its line) go with it; every other stays.
    const own = ['# Reports: read only.', '# its only resource server'];
    expect(comments(after)).toEqual(comments(before).filter((c) => !own.includes(c)));
    const billing = written(before).slice(0, written(before).indexOf('  # Reports: read only.'));
    expect(written(after).slice(0, billing.length)).toEqual(billing);
  });

  it.each(['disable', 'enable', 'remove'])('%s of an unknown client: exit 1, one line, file unchanged', async (action) => {
    const f = fixture();
    const before = read(f);
    expectUserError(await cli(f, ['client', action, 'nobody']), /no client "nobody"/);
    expect(read(f)).toBe(before);
  });
});

describe('revoking in a store that is not the servers\'', () => {
  const sqliteConfig = (path: string) => CONFIG.replace('store: { kind: memory }', `store: { kind: sqlite, path: ${path} }`);

  it('refuses a SQLite path that does not exist (a one-off container): exit 1, one line, no file created, registry unchanged', async () => {
    const db = join(tempDir(), 'nowhere', 'tollgate.db');
    const f = fixture(sqliteConfig(db));
    const before = read(f);
    for (const args of [['client', 'disable', 'billing-service'], ['client', 'remove', 'reports'], ['token', 'revoke', '--client', 'billing-service'], ['token', 'revoke', '--jti', 'j']]) {
      expectUserError(await cli(f, args), new RegExp(`${db.replace(/[.]/g, '\\.')}: no token store here: the file does not exist`));
    }
    expect(existsSync(db)).toBe(false);
    expect(existsSync(dirname(db))).toBe(false);
    expect(read(f)).toBe(before);
  });

  it('refuses a SQLite file no server has used, and leaves it as it was', async () => {
    const db = join(tempDir(), 'empty.db');
    writeFileSync(db, '');
    const f = fixture(sqliteConfig(db));
    expectUserError(await cli(f, ['client', 'disable', 'billing-service']), /empty\.db: not a token store: no tollgate server has used this file/);
    expect(readFileSync(db)).toHaveLength(0);
  });

  it('refuses the memory store, whose tokens live in the server process, unless --registry-only', async () => {
    const f = fixture();
    const before = read(f);
    expectUserError(await cli(f, ['client', 'disable', 'billing-service']), /store\.kind is memory: .* cannot be revoked from here \(--registry-only changes the registry alone\)/);
    expectUserError(await cli(f, ['client', 'remove', 'reports']), /store\.kind is memory/);
    expect(read(f)).toBe(before);
    const run = await cli(f, ['client', 'disable', 'billing-service', '--registry-only']);
    expect(run.code).toBe(0);
    expect(lines(run.stderr)).toEqual([`disabled client "billing-service" in ${f.clientsFile}`]);
  });

  it('says how many tokens it revoked and in which store', async () => {
    const db = join(tempDir(), 'tollgate.db');
    const store = new SqliteTokenStore(db);
    const now = Math.floor(Date.now() / 1000);
    await store.record(makeRecord({ iat: now - 10, clientId: 'billing-service' }));
    await store.record(makeRecord({ iat: now - 5, clientId: 'billing-service' }));
    await store.record(makeRecord({ iat: now - 5, clientId: 'reports' }));
    await store.close();
    const f = fixture(sqliteConfig(db));
    const disable = await cli(f, ['client', 'disable', 'billing-service']);
    expect(disable.code).toBe(0);
    expect(lines(disable.stderr)).toEqual([`disabled client "billing-service" in ${f.clientsFile}; revoked 2 live tokens of client "billing-service" in ${db}`]);
    const again = await cli(f, ['token', 'revoke', '--client', 'billing-service']);
    expect(lines(again.stderr)).toEqual([`revoked 0 live tokens of client "billing-service" in ${db}`]);
    const remove = await cli(f, ['client', 'remove', 'reports']);
    expect(lines(remove.stderr)).toEqual([`removed client "reports" in ${f.clientsFile}; revoked 1 live token of client "reports" in ${db}`]);
  });

  it('refuses to remove the only client, which a running server would keep serving, unless allow_empty_registry', async () => {
    const only = `clients:\n  - client_id: solo\n    secrets: [{ hash: "${HASH}" }]\n    audiences: [https://api.test]\n`;
    const f = writeFixture({ config: CONFIG, clients: only });
    expectUserError(await cli(f, ['client', 'remove', 'solo', '--registry-only']), /"solo" is the only client: a running server refuses a registry with no clients \(allow_empty_registry is false\); disable it instead/);
    expect(read(f)).toBe(only);
    const allowed = writeFixture({ config: `${CONFIG}allow_empty_registry: true\n`, clients: only });
    expect((await cli(allowed, ['client', 'remove', 'solo', '--registry-only'])).code).toBe(0);
    expect(clientsIn(read(allowed))).toEqual([]);
  });
});

describe('client add --allowed-ip', () => {
  it('writes the addresses it may connect from, checked like the registry checks them', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'add', 'edge', '--audience', 'https://api.test', '--allowed-ip', '10.1.0.0/16', '--allowed-ip', '2001:db8::7']);
    expect(run.code, run.stderr).toBe(0);
    expect(entry(read(f), 'edge')).toMatchObject({ allowed_ips: ['10.1.0.0/16', '2001:db8::7'] });
    expectUserError(await cli(f, ['client', 'add', 'edge2', '--audience', 'https://api.test', '--allowed-ip', 'example.com']), /invalid --allowed-ip "example\.com"/);
  });
});

describe('client show', () => {
  it('prints the entry in registry field names, with what defaults give and hashes cut to their parameters', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'show', 'billing-service']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toContain(HASH.split('$')[4]!);
    const params = HASH.split('$').slice(0, 4).join('$');
    expect(lines(run.stdout)).toEqual([
      'client_id: billing-service',
      'disabled: false',
      'auth_methods: [client_secret_basic, client_secret_post]',
      'scopes: [invoices:read, invoices:write]',
      'default_scopes: [invoices:read]',
      'audiences: [https://api.example.com]',
      'token_ttl: 900 # seconds, from tokens.ttl',
      'introspect: false',
      'allowed_ips: [10.0.0.0/8, 192.0.2.7]',
      'secrets:',
      `  - hash: ${params}$…`,
      '    expires_at: 2027-01-01T00:00:00Z',
    ]);
    const json = await cli(f, ['client', 'show', 'reports', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ client_id: 'reports', disabled: true, secrets: [{ hash: `${params}$…` }] });
  });

  it('of an unknown client: exit 1, one line', async () => {
    expectUserError(await cli(fixture(), ['client', 'show', 'nobody']), /no client "nobody" in /);
  });
});

describe('client update', () => {
  it('replaces only the fields given, keeping every comment, the other entries and the style of each list', async () => {
    const f = fixture();
    const before = read(f);
    const run = await cli(f, ['client', 'update', 'billing-service', '--scope', 'invoices:read reports:read', '--ttl', '15m', '--allowed-ip', '192.0.2.0/24', '--allowed-ip', '2001:db8::/32', '--introspect']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toEqual([`updated scopes, token_ttl, allowed_ips, introspect of client "billing-service" in ${f.clientsFile}`]);
    const after = read(f);
    expect(entry(after, 'billing-service')).toEqual({
      ...entry(before, 'billing-service'),
      scopes: ['invoices:read', 'reports:read'],
      token_ttl: 900,
      allowed_ips: ['192.0.2.0/24', '2001:db8::/32'],
      introspect: true,
    });
    expect(after).toContain('    scopes: [invoices:read, reports:read]\n');
    expect(comments(after)).toEqual(comments(before));
    expect(entry(after, 'reports')).toEqual(entry(before, 'reports'));

    // A replaced value keeps the comment on its line.
    expect((await cli(f, ['client', 'update', 'reports', '--audience', 'https://b.test', '--audience', 'https://c.test'])).code).toBe(0);
    expect(read(f)).toContain('    audiences: [https://b.test, https://c.test] # its only resource server\n');
    expect(comments(read(f))).toEqual(comments(before));
  });

  it('keeps default_scopes within the new scopes, and removes allowed addresses and introspection on request', async () => {
    const f = fixture();
    await cli(f, ['client', 'update', 'billing-service', '--introspect']);
    const run = await cli(f, ['client', 'update', 'billing-service', '--scope', 'invoices:write', '--any-ip', '--no-introspect']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/default_scopes removed: it now grants every scope/);
    const billing = entry(read(f), 'billing-service')!;
    expect(billing).toMatchObject({ scopes: ['invoices:write'], introspect: false });
    expect(billing).not.toHaveProperty('default_scopes');
    expect(billing).not.toHaveProperty('allowed_ips');
  });

  it('requires DPoP of a client with --require-dpop, shows it, and makes it optional again with --no-require-dpop', async () => {
    const f = fixture();
    const added = await cli(f, ['client', 'add', 'orders', '--audience', 'https://orders.test', '--require-dpop']);
    expect(added.code, added.stderr).toBe(0);
    expect(entry(read(f), 'orders')).toMatchObject({ dpop_bound_access_tokens: true });
    expect((await cli(f, ['client', 'show', 'orders'])).stdout).toContain('dpop_bound_access_tokens: true');
    expect((await cli(f, ['client', 'update', 'orders', '--no-require-dpop'])).code).toBe(0);
    expect(entry(read(f), 'orders')).not.toHaveProperty('dpop_bound_access_tokens');
    expect((await cli(f, ['client', 'update', 'reports', '--require-dpop'])).code).toBe(0);
    expect(entry(read(f), 'reports')).toMatchObject({ dpop_bound_access_tokens: true });
    expectUserError(await cli(f, ['client', 'update', 'reports', '--require-dpop', '--no-require-dpop']), /not both/);
  });

  it.each([
    [['client', 'update', 'nobody', '--ttl', '5m'], /no client "nobody" in /],
    [['client', 'update', 'billing-service'], /nothing to change/],
    [['client', 'update', 'billing-service', '--ttl', '59'], /--ttl must be 60 to 86400/],
    [['client', 'update', 'billing-service', '--scope', 'a "b"'], /invalid scope/],
    [['client', 'update', 'billing-service', '--audience', 'not a uri'], /invalid audience/],
    [['client', 'update', 'billing-service', '--auth-method', 'client_secret_jwt'], /unknown auth method "client_secret_jwt"/],
    [['client', 'update', 'billing-service', '--allowed-ip', '10.0.0.0/33'], /invalid --allowed-ip "10\.0\.0\.0\/33"/],
    [['client', 'update', 'billing-service', '--allowed-ip', '10.0.0.1', '--any-ip'], /not both/],
    [['client', 'update', 'billing-service', '--auth-method', 'private_key_jwt'], /not changed: the client would be invalid: entry: private_key_jwt needs exactly one of jwks or jwks_uri/],
  ])('refuses %j with one line and leaves the file byte for byte', async (args, message) => {
    const f = fixture();
    const before = read(f);
    expectUserError(await cli(f, args), message);
    expect(read(f)).toBe(before);
  });
});

describe('editing a registry with YAML aliases', () => {
  it('refuses to remove or replace an anchor other entries use (exit 2, "Unresolved alias", before), and edits around it', async () => {
    const shared = `clients:
  - client_id: a
    secrets: [{ hash: "${HASH}" }]
    audiences: &aud [https://x.test]
  - client_id: b
    secrets: [{ hash: "${HASH}" }]
    audiences: *aud
`;
    const f = writeFixture({ config: CONFIG, clients: shared });
    const message = /client "a" holds the anchor &aud that other entries use as \*aud: give them their own value first/;
    expectUserError(await cli(f, ['client', 'remove', 'a', '--registry-only']), message);
    expectUserError(await cli(f, ['client', 'update', 'a', '--audience', 'https://y.test']), message);
    expect(read(f)).toBe(shared);
    expect((await cli(f, ['client', 'update', 'a', '--scope', 's'])).code).toBe(0);
    expect((await cli(f, ['client', 'update', 'b', '--audience', 'https://x.test'])).code).toBe(0);
    expect((await cli(f, ['client', 'remove', 'a', '--registry-only'])).code).toBe(0);
    expect(clientsIn(read(f))).toEqual([expect.objectContaining({ client_id: 'b', audiences: ['https://x.test'] })]);
  });
});
