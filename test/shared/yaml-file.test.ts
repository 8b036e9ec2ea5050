import { describe, expect, it } from 'vitest';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { loadConfig } from '../../src/config/config.js';
import { didYouMean, editDistance } from '../../src/shared/did-you-mean.js';
import { problems, tempFile } from './config-problems.js';

const file = tempFile;

/** What zod writes when a schema gives no message of its own. */
const ZOD_WORDING = /Invalid input|Invalid option|Invalid string|Invalid URL|expected .*received|Too (small|big)|Unrecognized key|>=|<=/;

describe('config and registry problems', () => {
  // "listen.host: Invalid input: expected string, received number" reached operators as zod wrote it.
  it('are worded plainly, never in zod’s own words', () => {
    const config = file(
      'tollgate.yaml',
      `issuer: https://a.test
listen: { host: 5 }
trust_proxy: 10.0.0.1
tokens: { audience: "https://api.test" }
metadata: { max_age: -1, publish_scopes: yes }
log: { level: verbose }
store: { path: }
`,
    );
    const found = problems(() => loadConfig(config));
    expect([...found].sort()).toEqual([
      `${config}:2: listen.host: must be a string`,
      `${config}:3: trust_proxy: must be a list`,
      `${config}:4: tokens.audience: must be a list`,
      `${config}:5: metadata.max_age: must be at least 0`,
      `${config}:5: metadata.publish_scopes: must be true or false`,
      `${config}:6: log.level: must be one of fatal, error, warn, info, debug, trace, silent`,
      `${config}:7: store.path: is empty: it must be a string`,
    ].sort());
    for (const p of found) expect(p).not.toMatch(ZOD_WORDING);
  });

  it('of the registry are worded plainly too', () => {
    const registry = file(
      'clients.yaml',
      `clients:
  - client_id: 7
    scopes: "a b"
    introspect: 1
    audiences: [https://api.test]
    auth_methods: []
    tls_client_auth_subject_dn: ""
`,
    );
    const found = problems(() => loadRegistryFile(registry, { defaultAudience: [] }));
    expect(found).toEqual(
      expect.arrayContaining([
        `${registry}:2: clients[0].client_id: must be a string`,
        `${registry}:3: clients[0].scopes: must be a list`,
        `${registry}:4: clients[0].introspect: must be true or false`,
        `${registry}:7: clients[0].tls_client_auth_subject_dn: is not an RFC 4514 distinguished name: is empty`,
      ]),
    );
    for (const p of found) expect(p).not.toMatch(ZOD_WORDING);
  });

  it('suggest the field an unknown one was meant to be', () => {
    const config = file('tollgate.yaml', 'isuer: https://a.test\nissuer: https://a.test\ntokens: { tll: 5m }\nclientsfile: x\nlisten: { hots: x }\ncolour: blue\n');
    expect(problems(() => loadConfig(config)).sort()).toEqual([
      `${config}:1: isuer: unknown field (did you mean issuer?)`,
      `${config}:3: tokens.tll: unknown field (did you mean ttl?)`,
      `${config}:4: clientsfile: unknown field (did you mean clients_file?)`,
      `${config}:5: listen.hots: unknown field (did you mean host?)`,
      `${config}:6: colour: unknown field`,
    ]);
    const registry = file(
      'clients.yaml',
      'clients:\n  - client_id: a\n    scope: [x]\n    audience: [https://api.test]\n    clientId: a\n    secrets: [{ hash: "h", expires: 2027-01-01 }]\n    client_secret: hunter2\n',
    );
    const found = problems(() => loadRegistryFile(registry, { defaultAudience: ['https://api.test'] }));
    expect(found).toEqual(
      expect.arrayContaining([
        `${registry}:3: clients[0].scope: unknown field (did you mean scopes?)`,
        `${registry}:4: clients[0].audience: unknown field (did you mean audiences?)`,
        `${registry}:5: clients[0].clientId: unknown field (did you mean client_id?)`,
        `${registry}:6: clients[0].secrets[0].expires: unknown field (did you mean expires_at?)`,
        // A plaintext secret keeps its own, stronger message.
        expect.stringMatching(new RegExp(`^${registry}:7: clients\\[0\\]\\.client_secret: plaintext secrets are refused`)),
      ]),
    );
    expect(found.join('\n')).not.toContain('hunter2');
  });
});

describe('didYouMean', () => {
  it.each([
    ['scope', ['scopes', 'audiences'], 'scopes'],
    ['tll', ['ttl', 'audience'], 'ttl'],
    ['clientId', ['client_id', 'secrets'], 'client_id'],
    ['CLIENTS-FILE', ['clients_file'], 'clients_file'],
    ['colour', ['issuer', 'listen', 'tokens'], undefined],
    ['x', ['y'], undefined],
    ['ab', ['abcd'], undefined],
  ])('%s among %j: %s', (name, known, expected) => {
    expect(didYouMean(name, known)).toBe(expected);
  });

  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('ttl', 'tlt')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });
});
