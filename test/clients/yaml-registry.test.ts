import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/shared/config-error.js';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { hashOf, tempDir } from '../helpers.js';

let hash: string;
beforeAll(async () => {
  hash = await hashOf('registry-secret-0123456789abcdefghijklm');
});

const options = { defaultAudience: [] as string[] };

function registryFile(text: string): string {
  const file = join(tempDir(), 'clients.yaml');
  writeFileSync(file, text);
  return file;
}

function problems(text: string, opts = options): string[] {
  const file = registryFile(text);
  try {
    loadRegistryFile(file, opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').map((l) => l.replace(file, 'F'));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadRegistryFile', () => {
  it('loads a full entry with its defaults', () => {
    const file = registryFile(`clients:
  - client_id: billing-service
    secrets:
      - hash: "${hash}"
        expires_at: 2027-01-01T00:00:00Z
      - hash: "${hash}"
    scopes: [invoices:read, invoices:write]
    default_scopes: [invoices:read]
    audiences: [https://api.example.com]
    token_ttl: 600
    introspect: true
    allowed_ips: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
  - client_id: minimal
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.example.com]
`);
    const registry = loadRegistryFile(file, options);
    const billing = registry.get('billing-service')!;
    expect(billing).toMatchObject({
      clientId: 'billing-service',
      authMethods: ['client_secret_basic', 'client_secret_post'],
      scopes: ['invoices:read', 'invoices:write'],
      defaultScopes: ['invoices:read'],
      audiences: ['https://api.example.com'],
      tokenTtl: 600,
      introspect: true,
      disabled: false,
    });
    expect(billing.secrets[0]!.expiresAt).toBe(Date.parse('2027-01-01T00:00:00Z'));
    expect(billing.secrets[1]!.expiresAt).toBeUndefined();
    expect(billing.allowedIps!.check('10.20.30.40', 'ipv4')).toBe(true);
    expect(billing.allowedIps!.check('192.0.2.8', 'ipv4')).toBe(false);
    expect(billing.allowedIps!.check('2001:db8:1::1', 'ipv6')).toBe(true);
    const minimal = registry.get('minimal')!;
    expect(minimal).toMatchObject({ scopes: [], defaultScopes: [], introspect: false, disabled: false });
    expect(minimal.allowedIps).toBeUndefined();
    expect(registry.get('nobody')).toBeUndefined();
  });

  it('accepts an empty registry', () => {
    expect(loadRegistryFile(registryFile(''), options).all()).toEqual([]);
    expect(loadRegistryFile(registryFile('clients: []\n'), options).all()).toEqual([]);
    expect(loadRegistryFile(registryFile('clients:\n'), options).all()).toEqual([]);
  });

  it('loads the shipped config/clients.yaml', () => {
    expect(loadRegistryFile('config/clients.yaml', options).get('demo-service')).toBeDefined();
  });

  it('refuses plaintext secrets however they are written', () => {
    expect(problems(`clients:\n  - client_id: a\n    secret: hunter2\n    audiences: [x]\n`)).toContain(
      'F:3: clients[0].secret: plaintext secrets are refused: store an argon2id hash under secrets[].hash (tollgate hash-secret)',
    );
    expect(problems(`clients:\n  - client_id: a\n    client_secret: hunter2\n    audiences: [x]\n`)[0]).toMatch(/clients\[0\]\.client_secret: plaintext secrets are refused/);
    expect(problems(`clients:\n  - client_id: a\n    secrets: [{ hash: hunter2 }]\n    audiences: [x]\n`)).toEqual([
      'F:3: clients[0].secrets[0].hash: must be an argon2id hash (make one with `tollgate hash-secret`); plaintext secrets are refused',
    ]);
    expect(problems(`clients:\n  - client_id: a\n    secrets: [hunter2]\n    audiences: [x]\n`)[0]).toMatch(/clients\[0\]\.secrets\[0\]: /);
  });

  it.each([
    ['an argon2i hash', '$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2g', /not argon2i or argon2d/],
    ['a truncated hash', '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ', /not a well-formed argon2id PHC string/],
    ['a bcrypt hash', '$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', /not a well-formed/],
    ['absurd memory', '$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2g', /too costly/],
    ['a missing parameter', '$argon2id$v=19$m=19456,t=2$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2g', /exactly the m, t and p/],
  ])('refuses %s', (_what, badHash, expected) => {
    const [line] = problems(`clients:\n  - client_id: a\n    secrets: [{ hash: "${badHash}" }]\n    audiences: [x]\n`);
    expect(line).toMatch(/^F:3: clients\[0\]\.secrets\[0\]\.hash: /);
    expect(line).toMatch(expected);
  });

  it('lists every problem in the file, each with its line', () => {
    const lines = problems(`clients:
  - client_id: a
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.test]
  - client_id: a
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.test]
  - client_id: b
    secrets: [{ hash: "${hash}", expires_at: tomorrow }]
    scopes: [read, "bad scope", read]
    default_scopes: [write]
    token_ttl: 10
    allowed_ips: [10.0.0.0/33, not-an-ip]
    auth_methods: [client_secret_jwt]
    colour: red
    audiences: [https://api.test]
`);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^F:9: clients\[2\]\.secrets\[0\]\.expires_at: must be a timestamp/),
        expect.stringMatching(/^F:10: clients\[2\]\.scopes\[1\]: must be a scope token/),
        expect.stringMatching(/^F:12: clients\[2\]\.token_ttl: must be at least 60 seconds/),
        expect.stringMatching(/^F:13: clients\[2\]\.allowed_ips\[0\]: must be an IPv4 or IPv6 address or CIDR/),
        expect.stringMatching(/^F:13: clients\[2\]\.allowed_ips\[1\]: /),
        expect.stringMatching(/^F:14: clients\[2\]\.auth_methods\[0\]: must be one of client_secret_basic, client_secret_post/),
        'F:15: clients[2].colour: unknown field',
        // Rules across fields and entries are reported beside the field errors, not after a fix.
        'F:5: clients[1].client_id: duplicate client_id "a" (also clients[0])',
        'F:11: clients[2].default_scopes[0]: "write" is not in scopes',
      ]),
    );
    // In file order.
    const lineNumbers = lines.map((l) => Number(/^F:(\d+):/.exec(l)![1]));
    expect(lineNumbers).toEqual([...lineNumbers].sort((x, y) => x - y));
    // Cross-field rules run once the entries themselves are sound.
    expect(
      problems(`clients:
  - client_id: a
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.test]
  - client_id: a
    secrets: [{ hash: "${hash}" }]
    audiences: [https://api.test]
`),
    ).toEqual(['F:5: clients[1].client_id: duplicate client_id "a" (also clients[0])']);
  });

  it.each([
    ['default_scopes outside scopes', 'scopes: [read]\n    default_scopes: [write]\n    audiences: [x]', /default_scopes\[0\]: "write" is not in scopes/],
    ['a scope listed twice', 'scopes: [read, read]\n    audiences: [x]', /scopes\[1\]: scope "read" is listed twice/],
    ['a client_id with a control character', 'audiences: [x]', /client_id: must be 1 to 255 visible ASCII/, 'a\\tb'],
    ['an empty client_id', 'audiences: [x]', /client_id: must be 1 to 255/, ''],
  ])('refuses %s', (_what, extra, expected, id = 'a') => {
    const text = `clients:\n  - client_id: "${id}"\n    secrets: [{ hash: "${hash}" }]\n    ${extra}\n`;
    expect(problems(text).join('\n')).toMatch(expected);
  });

  it('refuses a secret-authenticated client without secrets', () => {
    expect(problems(`clients:\n  - client_id: a\n    audiences: [x]\n`)).toEqual([
      'F:2: clients[0].secrets: client_secret_basic, client_secret_post needs at least one secret',
    ]);
  });

  it('refuses a client with no audience at all, and accepts it when tokens.audience has one', () => {
    const text = `clients:\n  - client_id: a\n    secrets: [{ hash: "${hash}" }]\n`;
    expect(problems(text)).toEqual(['F:2: clients[0]: has no audiences and tokens.audience is empty: its tokens would have no aud claim']);
    expect(loadRegistryFile(registryFile(text), { defaultAudience: ['https://api.test'] }).get('a')).toBeDefined();
  });

  it('refuses YAML syntax errors and a wrong top level', () => {
    expect(problems('clients:\n  - client_id: a\n  client_id: b\n')[0]).toMatch(/^F:\d+: YAML syntax: /);
    expect(problems('- a\n')[0]).toMatch(/^F:1: /);
    expect(problems('clients: { a: 1 }\n')).toEqual(['F:1: clients: must be a list of clients']);
  });

  it('refuses a tls_client_auth_subject_dn that is not an RFC 4514 name when it loads (it was accepted and never matched)', () => {
    const entry = (dn: string) => `clients:\n  - client_id: edge\n    auth_methods: [tls_client_auth]\n    tls_client_auth_subject_dn: ${JSON.stringify(dn)}\n    audiences: [x]\n`;
    expect(problems(entry('Smith, John'))).toEqual([
      'F:4: clients[0].tls_client_auth_subject_dn: is not an RFC 4514 distinguished name: expected an attribute type and "=" (as in CN=name) at character 1',
    ]);
    expect(problems(entry('CN=edge,FOO=bar'))).toEqual([
      'F:4: clients[0].tls_client_auth_subject_dn: is not an RFC 4514 distinguished name: unknown attribute type "FOO" (write its OID instead, as in 2.5.4.3=name)',
    ]);
    expect(problems(entry('CN=Smith, John,O=Ex'))[0]).toMatch(/tls_client_auth_subject_dn: .* at character 11 \(a comma inside a value is written \\,\)$/);
    const client = loadRegistryFile(registryFile(entry('CN=Smith\\, John,O=Ex')), options).get('edge')!;
    expect(client.tlsSubject).toMatchObject({ kind: 'subject_dn', value: 'CN=Smith\\, John,O=Ex' });
  });

  it('refuses a tls_client_auth_san_ip that is not an address', () => {
    const entry = (ip: string) => `clients:\n  - client_id: edge\n    auth_methods: [tls_client_auth]\n    tls_client_auth_san_ip: "${ip}"\n    audiences: [x]\n`;
    for (const ip of ['2001:db8::1::2', '10.0.0.256', 'fe80::1%eth0']) {
      expect(problems(entry(ip))).toEqual(['F:4: clients[0].tls_client_auth_san_ip: must be an IPv4 or IPv6 address']);
    }
    expect(loadRegistryFile(registryFile(entry('2001:DB8:0:0:0:0:0:1')), options).get('edge')).toBeDefined();
  });

  it('refuses a missing file with one line', () => {
    expect(() => loadRegistryFile('/nonexistent/clients.yaml', options)).toThrow('/nonexistent/clients.yaml: file not found');
  });
});
