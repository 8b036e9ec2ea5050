import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { expectUserError, lines, tollgateInProcess } from '../cli/run-cli.js';
import { tempDir, writeFixture, type Fixture } from '../helpers.js';

// trusted_issuers and the federation fields of clients in clients.yaml: what the registry
// accepts, and what `config check` says about what it refuses.

const CONFIG = `issuer: https://auth.test
clients_file: ./clients.yaml
tokens: { ttl: 900, audience: [https://api.test] }
keys: { dir: ./keys }
store: { kind: memory }
`;

const ISSUERS = `trusted_issuers:
  - name: prod-cluster
    issuer: https://kubernetes.default.svc.cluster.local
    jwks_uri: https://k8s-api.internal/openid/v1/jwks
    max_lifetime: 1h
  - name: github
    issuer: https://token.actions.githubusercontent.com
  - name: spire
    spiffe_trust_domain: example.org
    jwks_uri: https://spire-bundle.internal/
`;

const SOUND = `${ISSUERS}clients:
  - client_id: billing
    auth_methods: [federated_jwt]
    federated_identity: { issuer: prod-cluster, subject: "system:serviceaccount:payments:billing" }
    scopes: [invoices:read]
  - client_id: deploy
    auth_methods: [federated_jwt]
    federated_identity:
      issuer: github
      subject: repo:octo-org/octo-repo:environment:production
      claims: { repository_id: "74", repository_owner_id: "65" }
  - client_id: spiffe://example.org/ns/payments/sa/reporter
    auth_methods: [spiffe_jwt]
  - client_id: inventory
    auth_methods: [spiffe_jwt]
    spiffe_id: spiffe://example.org/ns/shop/sa/inventory
`;

function fileWith(text: string): string {
  const file = join(tempDir(), 'clients.yaml');
  writeFileSync(file, text);
  return file;
}

async function check(clients: string) {
  const f = writeFixture({ config: CONFIG, clients });
  const run = await tollgateInProcess(['config', 'check', '--config', f.configFile], { cwd: f.dir });
  return { run, problems: lines(run.stderr).map((l) => l.replace(f.clientsFile, 'F')) };
}

describe('trusted_issuers in the registry', () => {
  it('loads issuers and federated clients, with max_lifetime defaulting to 24 h and spiffe_id to the client_id', () => {
    const registry = loadRegistryFile(fileWith(SOUND), { defaultAudience: ['https://api.test'] });
    expect(registry.trustedIssuer('prod-cluster')).toMatchObject({ issuer: 'https://kubernetes.default.svc.cluster.local', maxLifetime: 3600 });
    expect(registry.trustedIssuer('github')).toMatchObject({ maxLifetime: 86_400, jwksUri: undefined, jwks: undefined });
    expect(registry.trustedIssuer('spire')).toMatchObject({ spiffeTrustDomain: 'example.org' });
    expect(registry.get('deploy')?.federatedIdentity).toEqual({
      issuer: 'github',
      subject: 'repo:octo-org/octo-repo:environment:production',
      claims: { repository_id: '74', repository_owner_id: '65' },
    });
    expect(registry.bySpiffeId('spiffe://example.org/ns/payments/sa/reporter')?.clientId).toBe('spiffe://example.org/ns/payments/sa/reporter');
    expect(registry.bySpiffeId('spiffe://example.org/ns/shop/sa/inventory')?.clientId).toBe('inventory');
    expect(registry.bySpiffeId('inventory')).toBeUndefined();
  });

  it('config check says ok and counts the trusted issuers', async () => {
    const { run } = await check(SOUND);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^ok: .*: 4 clients and 3 trusted issuers in /);
    expect(run.code).toBe(0);
  });

  it('config check lists every problem with its line', async () => {
    const { run, problems } = await check(`trusted_issuers:
  - name: prod-cluster
    issuer: http://kubernetes.default.svc
    jwks_url: https://k8s-api.internal/jwks
  - name: prod-cluster
    issuer: https://k8s.example.com
    jwks_uri: https://k8s.example.com/jwks
    jwks: { keys: [{ kty: EC, crv: P-256, x: AAAA, y: BBBB }] }
  - name: "has:colon"
    spiffe_trust_domain: Example.ORG
  - name: spire
    spiffe_trust_domain: example.org
  - name: nothing
    max_lifetime: 90d
  - name: leaky
    issuer: https://leaky.example.com
    jwks: { keys: [{ kty: EC, crv: P-256, x: AAAA, y: BBBB, d: CCCC }] }
clients:
  - client_id: billing
    auth_methods: [federated_jwt]
    federated_identity: { issuer: prod-clustr, subject: "system:serviceaccount:payments:billing" }
  - client_id: no-identity
    auth_methods: [federated_jwt]
  - client_id: stray
    auth_methods: [private_key_jwt]
    jwks_uri: https://stray.example.com/jwks
    federated_identity: { issuer: prod-cluster, subject: x }
    spiffe_id: spiffe://example.org/stray
  - client_id: wrong-kind
    auth_methods: [federated_jwt]
    federated_identity: { issuer: spire, subject: x, claims: { sub: y } }
  - client_id: not-a-spiffe-id
    auth_methods: [spiffe_jwt]
  - client_id: elsewhere
    auth_methods: [spiffe_jwt]
    spiffe_id: spiffe://other.org/ns/a
  - client_id: twin
    auth_methods: [spiffe_jwt]
    spiffe_id: spiffe://example.org/ns/a
  - client_id: twin-2
    auth_methods: [spiffe_jwt]
    spiffe_id: spiffe://example.org/ns/a
  - client_id: bad-id
    auth_methods: [spiffe_jwt]
    spiffe_id: spiffe://example.org/../x
`);
    expect(run.code).toBe(1);
    expect(problems).toEqual([
      'F:3: trusted_issuers[0].issuer: must be an https URL without query or fragment (the exact iss of its tokens)',
      'F:4: trusted_issuers[0].jwks_url: unknown field (did you mean jwks_uri?)',
      'F:5: trusted_issuers[1].name: duplicate name "prod-cluster"',
      'F:5: trusted_issuers[1]: give jwks or jwks_uri, not both',
      'F:9: trusted_issuers[2].name: must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit',
      'F:9: trusted_issuers[2]: a SPIFFE trust domain needs jwks_uri (its bundle endpoint) or jwks: there is no discovery for it',
      'F:10: trusted_issuers[2].spiffe_trust_domain: must be a SPIFFE trust domain: lowercase letters, digits, dots, dashes, underscores (example.org)',
      'F:11: trusted_issuers[3]: a SPIFFE trust domain needs jwks_uri (its bundle endpoint) or jwks: there is no discovery for it',
      'F:13: trusted_issuers[4]: needs issuer (an OpenID Connect or OAuth issuer) or spiffe_trust_domain',
      'F:14: trusted_issuers[4].max_lifetime: must be a duration from 1s to 2592000s, such as 30s, 15m, 24h or 7d',
      'F:17: trusted_issuers[5].jwks.keys[0]: holds a private key: only the public key belongs in the registry',
      'F:21: clients[0].federated_identity.issuer: no trusted issuer is named "prod-clustr" (did you mean prod-cluster?)',
      'F:22: clients[1]: federated_jwt needs federated_identity: { issuer, subject }',
      'F:27: clients[2].federated_identity: is used only by federated_jwt, which auth_methods does not list',
      'F:28: clients[2].spiffe_id: is used only by spiffe_jwt, which auth_methods does not list',
      'F:31: clients[3].federated_identity.claims: iss, sub, aud, exp, nbf and iat are checked already; name other claims',
      'F:31: clients[3].federated_identity.issuer: "spire" is a SPIFFE trust domain: use auth_methods [spiffe_jwt] for JWT-SVIDs',
      'F:32: clients[4]: spiffe_jwt needs a SPIFFE ID: set spiffe_id, or make the client_id one (spiffe://trust-domain/path)',
      'F:36: clients[5].spiffe_id: trust domain "other.org" is not in trusted_issuers (spiffe_trust_domain)',
      'F:42: clients[7].spiffe_id: SPIFFE ID "spiffe://example.org/ns/a" is also the one of clients[6]',
      'F:45: clients[8].spiffe_id: must be a SPIFFE ID: spiffe://trust-domain/path (lowercase trust domain, a non-empty path)',
    ]);
  });
});

describe('client add --federated and --spiffe-id', () => {
  const fixture = (): Fixture => writeFixture({ config: CONFIG, clients: SOUND });
  const cli = (f: Fixture, args: string[]) => tollgateInProcess([...args, '--config', f.configFile], { cwd: f.dir });
  const entry = (f: Fixture, id: string) =>
    (parse(readFileSync(f.clientsFile, 'utf8')) as { clients: Record<string, unknown>[] }).clients.find((c) => c.client_id === id);

  it('adds a federated_jwt client with no secret; the subject may hold colons', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'add', 'ledger', '--federated', 'prod-cluster:system:serviceaccount:finance:ledger', '--scope', 'ledger:write']);
    expect(run.stderr).toMatch(/added client "ledger" .*: it authenticates with tokens of "prod-cluster" whose sub is "system:serviceaccount:finance:ledger"/);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(entry(f, 'ledger')).toEqual({
      client_id: 'ledger',
      auth_methods: ['federated_jwt'],
      federated_identity: { issuer: 'prod-cluster', subject: 'system:serviceaccount:finance:ledger' },
      scopes: ['ledger:write'],
    });
    expect(loadRegistryFile(f.clientsFile, { defaultAudience: ['https://api.test'] }).get('ledger')?.authMethods).toEqual(['federated_jwt']);
  });

  it('adds a spiffe_jwt client, writing spiffe_id only when it is not the client_id', async () => {
    const f = fixture();
    expect((await cli(f, ['client', 'add', 'spiffe://example.org/ns/shop/sa/cart', '--spiffe-id', 'spiffe://example.org/ns/shop/sa/cart'])).code).toBe(0);
    expect(entry(f, 'spiffe://example.org/ns/shop/sa/cart')).toEqual({ client_id: 'spiffe://example.org/ns/shop/sa/cart', auth_methods: ['spiffe_jwt'] });
    expect((await cli(f, ['client', 'add', 'search', '--spiffe-id', 'spiffe://example.org/ns/shop/sa/search'])).code).toBe(0);
    expect(entry(f, 'search')).toEqual({ client_id: 'search', auth_methods: ['spiffe_jwt'], spiffe_id: 'spiffe://example.org/ns/shop/sa/search' });
  });

  it('client list --json shows each client\'s workload identity', async () => {
    const f = fixture();
    const doc = JSON.parse((await cli(f, ['client', 'list', '--json'])).stdout) as { clients: Record<string, unknown>[] };
    expect(doc.clients.find((c) => c.client_id === 'billing')).toMatchObject({
      auth_methods: ['federated_jwt'],
      federated_identity: { issuer: 'prod-cluster', subject: 'system:serviceaccount:payments:billing' },
      secrets: [],
    });
    expect(doc.clients.find((c) => c.client_id === 'inventory')).toMatchObject({ spiffe_id: 'spiffe://example.org/ns/shop/sa/inventory' });
  });

  it.each([
    [['--federated', 'prod-clusterX:sub'], /has no trusted issuer named "prod-clusterX" for --federated \(it has prod-cluster, github\)/],
    [['--federated', 'spire:sub'], /has no trusted issuer named "spire" for --federated/],
    [['--federated', 'no-subject:'], /--federated must be ISSUER:SUBJECT/],
    [['--federated', 'nocolon'], /--federated must be ISSUER:SUBJECT/],
    [['--federated', 'github:x', '--spiffe-id', 'spiffe://example.org/x'], /give --federated or --spiffe-id, not both/],
    [['--federated', 'github:x', '--auth-method', 'client_secret_basic'], /--federated sets the client's auth method: leave out --auth-method/],
    [['--spiffe-id', 'spiffe://other.org/x'], /trusts no SPIFFE trust domain "other\.org"/],
    [['--spiffe-id', 'https://example.org/x'], /--spiffe-id must be a SPIFFE ID/],
    [['--auth-method', 'federated_jwt'], /client add makes a federated_jwt client with --federated ISSUER:SUBJECT, not --auth-method/],
  ])('refuses %j with one line and exit 1, the file unchanged', async (flags, message) => {
    const f = fixture();
    expectUserError(await cli(f, ['client', 'add', 'svc', ...flags]), message);
    expect(readFileSync(f.clientsFile, 'utf8')).toBe(SOUND);
  });
});

describe('client update --federated and --spiffe-id', () => {
  const fixture = (): Fixture => writeFixture({ config: CONFIG, clients: SOUND });
  const cli = (f: Fixture, args: string[]) => tollgateInProcess([...args, '--config', f.configFile], { cwd: f.dir });
  const entry = (f: Fixture, id: string) =>
    (parse(readFileSync(f.clientsFile, 'utf8')) as { clients: Record<string, unknown>[] }).clients.find((c) => c.client_id === id);

  it('gives a federated_jwt client a new subject, and the server-side registry reads it', async () => {
    const f = fixture();
    const run = await cli(f, ['client', 'update', 'billing', '--federated', 'prod-cluster:system:serviceaccount:payments:billing-v2']);
    expect(run.stderr).toMatch(/^updated federated_identity of client "billing"/);
    expect(run.code).toBe(0);
    expect(entry(f, 'billing')).toMatchObject({ auth_methods: ['federated_jwt'], federated_identity: { issuer: 'prod-cluster', subject: 'system:serviceaccount:payments:billing-v2' } });
    expect(loadRegistryFile(f.clientsFile, { defaultAudience: ['https://api.test'] }).get('billing')?.federatedIdentity).toMatchObject({ subject: 'system:serviceaccount:payments:billing-v2' });
  });

  it('gives a spiffe_jwt client a new SPIFFE ID', async () => {
    const f = fixture();
    expect((await cli(f, ['client', 'update', 'inventory', '--spiffe-id', 'spiffe://example.org/ns/shop/sa/stock'])).code).toBe(0);
    expect(entry(f, 'inventory')).toMatchObject({ spiffe_id: 'spiffe://example.org/ns/shop/sa/stock' });
  });

  it.each([
    [['client', 'update', 'inventory', '--federated', 'prod-cluster:x'], /client "inventory" does not authenticate with federated_jwt: --federated changes the identity of a federated_jwt client/],
    [['client', 'update', 'billing', '--spiffe-id', 'spiffe://example.org/x'], /client "billing" does not authenticate with spiffe_jwt/],
    [['client', 'update', 'billing', '--federated', 'nosuch:sub'], /not changed: the client would be invalid: federated_identity\.issuer: no trusted issuer is named "nosuch"/],
    [['client', 'update', 'billing', '--federated', 'nocolon'], /--federated must be ISSUER:SUBJECT/],
    [['client', 'update', 'billing', '--federated', 'github:x', '--spiffe-id', 'spiffe://example.org/x'], /give --federated or --spiffe-id, not both/],
    [['client', 'update', 'inventory', '--spiffe-id', 'spiffe://other.org/x'], /not changed: the client would be invalid: spiffe_id: trust domain "other\.org" is not in trusted_issuers/],
  ])('refuses %j with one line and exit 1, the file unchanged', async (args, message) => {
    const f = fixture();
    expectUserError(await cli(f, args), message);
    expect(readFileSync(f.clientsFile, 'utf8')).toBe(SOUND);
  });
});
