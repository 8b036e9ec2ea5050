import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import argon2 from 'argon2';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { basic, FORM, hashOf, writeFixture, type Fixture } from '../helpers.js';
import { startServerProcess } from '../server-process.js';
import { expectUserError, lines, tollgateInProcess, type CliRun } from './run-cli.js';

const SECOND = 1000;
const HOUR = 3600 * SECOND;

let CURRENT = '';
let EXPIRED = '';
let LATER = '';
let SOONER = '';
beforeAll(async () => {
  [CURRENT, EXPIRED, LATER, SOONER] = await Promise.all([
    hashOf('current-secret-0123456789abcdefghijklmnopq'),
    hashOf('expired-secret-0123456789abcdefghijklmnopq'),
    hashOf('later-secret-0123456789abcdefghijklmnopqrs'),
    hashOf('sooner-secret-0123456789abcdefghijklmnopqr'),
  ]);
});

/** An instant as the registry writes it: ISO 8601 UTC, whole seconds. */
const iso = (ms: number) => new Date(Math.floor(ms / SECOND) * SECOND).toISOString().replace('.000Z', 'Z');

/**
 * A registry as an operator keeps it, in styles yaml would not write itself (aligned comments,
 * padded flow lists). billing-service has a secret in use (no expiry), one long
 * expired, one set to expire in 2099 and one set to expire `soonerAt` (the caller picks it
 * inside or outside --keep-old); reports keeps its single secret in a flow list.
 */
const registry = (soonerAt: number) => `# Client registry for the rotation tests.
clients:
  # Billing: mid-rotation already.
  - client_id: billing-service
    secrets:
      # the one in use
      - hash: "${CURRENT}"
      - hash: "${EXPIRED}"
        expires_at: 2020-01-01T00:00:00Z # long gone
      - hash: "${LATER}"
        expires_at: 2099-01-01T00:00:00Z
      - hash: "${SOONER}" # on its way out
        expires_at: ${iso(soonerAt)}
    scopes: [invoices:read, invoices:write]
    audiences: [https://api.example.com]

  # Reports: read only.
  - client_id: reports
    secrets: [ { hash: "${CURRENT}" } ]
    scopes: [invoices:read]
    audiences: [ https://api.example.com ]      # its only resource server
    disabled: true
# End of the registry.
`;

const CONFIG = `issuer: https://auth.test
clients_file: ./clients.yaml
tokens: { ttl: 900, audience: [] }
keys: { dir: ./keys }
store: { kind: memory }
`;

function fixture(soonerAt = Date.now() + 10 * 60 * SECOND): Fixture {
  return writeFixture({ config: CONFIG, clients: registry(soonerAt) });
}

function cli(f: Fixture, args: string[]): Promise<CliRun> {
  return tollgateInProcess([...args, '--config', f.configFile], { cwd: f.dir });
}

interface Secret {
  hash: string;
  expires_at?: string;
}
const read = (f: Fixture) => readFileSync(f.clientsFile, 'utf8');
const clientsIn = (text: string) => (parse(text) as { clients: { client_id: string; secrets: Secret[] }[] }).clients;
const secretsOf = (text: string, id: string) => clientsIn(text).find((c) => c.client_id === id)!.secrets;
const expiry = (s: Secret | undefined) => Date.parse(s!.expires_at!);

/** Runs rotate-secret and returns the run with the time window it ran in. */
async function rotate(f: Fixture, id: string, ...options: string[]) {
  const start = Date.now();
  const run = await cli(f, ['client', 'rotate-secret', id, ...options]);
  return { run, start, end: Date.now() };
}

/** What `expires_at` a secret limited by --keep-old FOR may hold: now+FOR, rounded up to a second, for some now in the window. */
function expectAround(at: number, start: number, end: number, forMs: number): void {
  expect(at).toBeGreaterThanOrEqual(start + forMs);
  expect(at).toBeLessThanOrEqual(end + forMs + SECOND);
  expect(at % SECOND).toBe(0);
}

describe('client rotate-secret', () => {
  it('prints only the new secret, appends its hash, limits the older secrets to now+FOR, keeps sooner ones, removes expired ones', async () => {
    const soonerAt = Date.now() + 10 * 60 * SECOND;
    const f = fixture(soonerAt);
    const before = read(f);
    const { run, start, end } = await rotate(f, 'billing-service', '--keep-old', '1h');
    expect(run.code).toBe(0);
    // One stdout line, the secret: 256 random bits as base64url.
    expect(run.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const secret = run.stdout.trim();
    expect(run.stderr).not.toContain(secret);
    expect(run.stderr).toMatch(/new secret to client "billing-service".*shown only once/);
    expect(run.stderr).toMatch(/^2 older secrets keep working until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
    expect(run.stderr).toMatch(/^1 older secret already set to expire sooner kept its time$/m);
    expect(run.stderr).toMatch(/^removed 1 secret that had already expired$/m);

    const after = read(f);
    expect(after).not.toContain(secret);
    const secrets = secretsOf(after, 'billing-service');
    expect(secrets.map((s) => s.hash)).toEqual([CURRENT, LATER, SOONER, expect.stringMatching(/^\$argon2id\$v=19\$/)]);
    const [current, later, sooner, added] = secrets;
    expect(await argon2.verify(added!.hash, secret)).toBe(true);
    expect(added).not.toHaveProperty('expires_at');
    expectAround(expiry(current), start, end, HOUR);
    expect(later!.expires_at).toBe(current!.expires_at);
    expect(sooner!.expires_at).toBe(iso(soonerAt));
    expect(run.stderr).toContain(current!.expires_at);
    // Written as the operator would: a plain UTC timestamp with seconds.
    expect(after).toContain(`      - hash: "${CURRENT}"\n        expires_at: ${current!.expires_at}\n`);

    // Everything outside billing-service's secrets is byte for byte as it was, comments included.
    const head = (t: string) => t.slice(0, t.indexOf('    secrets:\n'));
    const tail = (t: string) => t.slice(t.indexOf('    scopes: [invoices:read, invoices:write]'));
    expect(head(after)).toBe(head(before));
    expect(tail(after)).toBe(tail(before));
    // The kept secrets keep their comments; the removed one takes its own with it.
    expect(after).toContain('      # the one in use\n');
    expect(after).toContain(`      - hash: "${SOONER}" # on its way out\n        expires_at: ${iso(soonerAt)}\n`);
    expect(after).not.toContain('long gone');
  });

  it('keeps the older secrets for 24h by default', async () => {
    const f = fixture();
    const { run, start, end } = await rotate(f, 'billing-service');
    expect(run.code).toBe(0);
    const [current, later] = secretsOf(read(f), 'billing-service');
    expectAround(expiry(current), start, end, 24 * HOUR);
    expect(later!.expires_at).toBe(current!.expires_at);
  });

  it.each(['0', '0s'])('--keep-old %s expires the older secrets at once', async (keepOld) => {
    const f = fixture();
    const { run, start, end } = await rotate(f, 'billing-service', '--keep-old', keepOld);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^3 older secrets stop working now$/m);
    const secrets = secretsOf(read(f), 'billing-service');
    expect(secrets).toHaveLength(4);
    for (const old of secrets.slice(0, 3)) {
      expect(expiry(old)).toBeGreaterThanOrEqual(Math.floor(start / SECOND) * SECOND);
      expect(expiry(old)).toBeLessThanOrEqual(end);
    }
    expect(secrets[3]).not.toHaveProperty('expires_at');
    // client list agrees: the three older ones are expired, the new one has no expiry.
    const list = await cli(f, ['client', 'list']);
    expect(lines(list.stdout)[1]).toMatch(/(expired \S+Z, ){3}no expiry$/);
  });

  it('rotates a disabled client, says nothing special about it, and turns a flow list of secrets into a block list', async () => {
    const f = fixture();
    const before = read(f);
    const { run, start, end } = await rotate(f, 'reports', '--keep-old', '15m');
    expect(run.code).toBe(0);
    expect(run.stderr).not.toMatch(/disabled/);
    const after = read(f);
    const secrets = secretsOf(after, 'reports');
    expect(secrets).toHaveLength(2);
    expect(secrets[0]!.hash).toBe(CURRENT);
    expectAround(expiry(secrets[0]), start, end, 15 * 60 * SECOND);
    expect(await argon2.verify(secrets[1]!.hash, run.stdout.trim())).toBe(true);
    expect(clientsIn(after).find((c) => c.client_id === 'reports')).toMatchObject({ disabled: true });
    // Everything before reports' secrets and after its entry is as written; the entry itself is
    // rewritten in yaml's style and means what it meant, but for its secrets.
    const cut = (t: string) => [t.slice(0, t.indexOf('    secrets:', t.indexOf('client_id: reports'))), t.slice(t.indexOf('# End of the registry.'))];
    expect(cut(after)).toEqual(cut(before));
    const { secrets: _, ...rest } = clientsIn(before).find((c) => c.client_id === 'reports')!;
    expect(clientsIn(after).find((c) => c.client_id === 'reports')).toEqual({ ...rest, secrets });
    expect(after).toContain(`    secrets:\n      - hash: "${CURRENT}"\n        expires_at: ${secrets[0]!.expires_at}\n      - hash: $argon2id$`);
  });

  it('a second rotation keeps the time the first one set', async () => {
    const f = fixture();
    expect((await rotate(f, 'reports', '--keep-old', '1h')).run.code).toBe(0);
    const first = secretsOf(read(f), 'reports')[0]!.expires_at;
    const { run, start, end } = await rotate(f, 'reports', '--keep-old', '7d');
    expect(run.code).toBe(0);
    const secrets = secretsOf(read(f), 'reports');
    expect(secrets).toHaveLength(3);
    expect(secrets[0]!.expires_at).toBe(first);
    expectAround(expiry(secrets[1]), start, end, 7 * 24 * HOUR);
  });

  it.each([
    [['nobody'], /no client "nobody"/],
    [[], /missing ID/],
    [['billing-service', 'extra'], /unexpected argument "extra"/],
    [['billing-service', '--keep-old', 'abc'], /--keep-old must be a duration like 30s, 15m, 24h or 7d/],
    [['billing-service', '--keep-old', '1.5h'], /--keep-old must be a duration/],
    [['billing-service', '--keep-old', '-1h'], /--keep-old/],
    [['billing-service', '--keep-old', '24x'], /--keep-old must be a duration/],
    [['billing-service', '--keep-old', ''], /--keep-old must be a duration/],
    [['billing-service', '--keep-old', '31d'], /--keep-old may be at most 30d, not 31d/],
    [['billing-service', '--keep-old'], /--keep-old/],
  ])('refuses %j with one line and leaves the file byte for byte', async (args, message) => {
    const f = fixture();
    const before = read(f);
    const files = readdirSync(f.dir);
    expectUserError(await cli(f, ['client', 'rotate-secret', ...args]), message);
    expect(read(f)).toBe(before);
    expect(readdirSync(f.dir)).toEqual(files);
  });

  it('refuses a key-based client, which has no secret to rotate', async () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const f = writeFixture({
      config: CONFIG,
      clients: `clients:\n  - client_id: ledger\n    auth_methods: [private_key_jwt]\n    jwks: { keys: [${JSON.stringify(jwk)}] }\n    audiences: [https://api.test]\n`,
    });
    const before = read(f);
    expectUserError(await cli(f, ['client', 'rotate-secret', 'ledger']), /client "ledger" authenticates with private_key_jwt, not with a secret/);
    expect(read(f)).toBe(before);
  });

  it('takes the longest --keep-old, 30d', async () => {
    const f = fixture();
    const { run, start, end } = await rotate(f, 'reports', '--keep-old', '30d');
    expect(run.code).toBe(0);
    expectAround(expiry(secretsOf(read(f), 'reports')[0]), start, end, 30 * 24 * HOUR);
  });
});

describe('client list', () => {
  it('shows when each secret expires, and which have expired', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'list']);
    expect(run.code).toBe(0);
    const [, billing, reports] = lines(run.stdout);
    expect(billing).toMatch(/\s-\s+no expiry, expired 2020-01-01T00:00:00Z, expires 2099-01-01T00:00:00Z, expires \S+Z$/);
    expect(reports).toMatch(/\s-\s+no expiry$/);
  });
});

describe('rotation against a running server', () => {
  it('both secrets work once the server has reloaded; at its expires_at the old one stops and the new one goes on', async () => {
    const OLD = 'old-secret-0123456789abcdefghijklmnopqrstuv';
    const f = writeFixture({
      config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
`,
      clients: `clients:\n  - client_id: svc\n    secrets:\n      - hash: "${await hashOf(OLD)}"\n    audiences: [https://api.test]\n`,
    });
    const server = await startServerProcess(f.configFile);
    const status = async (secret: string) => {
      const res = await fetch(`${server.url}/oauth2/token`, {
        method: 'POST',
        headers: { ...FORM, authorization: basic('svc', secret) },
        body: 'grant_type=client_credentials',
      });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await status(OLD)).toBe(200);

    const { run } = await rotate(f, 'svc', '--keep-old', '2s');
    expect(run.code).toBe(0);
    const NEW = run.stdout.trim();
    const oldExpiresAt = expiry(secretsOf(read(f), 'svc')[0]);

    // The server notices the file within a second or two; waiting for its log line rather than
    // polling with the new secret spends no failed authentications.
    await server.waitForOutput(/"event":"registry\.reloaded"/, 5000);
    expect(await Promise.all([status(OLD), status(NEW)])).toEqual([200, 200]);

    // The old secret keeps working until its expires_at, and not a moment after; nothing but
    // the passing of time makes it stop.
    const deadline = oldExpiresAt + 5000;
    for (;;) {
      const s = await status(OLD);
      if (s === 401) break;
      expect(s).toBe(200);
      expect(Date.now(), 'the old secret still worked 5 s after its expires_at').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Date.now()).toBeGreaterThanOrEqual(oldExpiresAt);
    expect(await status(NEW)).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(server.stdout()).not.toContain(NEW);
  });
});
