import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RegistryFile } from '../../src/clients/registry-file.js';
import { hashOf, tempDir } from '../helpers.js';

const options = { defaultAudience: ['https://api.test'] };

let H = '';
beforeAll(async () => {
  H = await hashOf('registry-file-secret-0123456789abcdefghijk');
});

/** Styles yaml would not write itself: aligned comments, padded `{ a: b }` and `[ a ]`, two blank lines. */
const styled = () => `# The registry.
clients:
  - client_id: a                      # first
    secrets: [ { hash: "${H}" } ]
    scopes:    [x, y]


  # b, the one edited below
  - client_id: b
    secrets:
      - { hash: "${H}", expires_at: 2099-01-01T00:00:00Z }
  - client_id: c                      # last
    secrets: [{ hash: '${H}' }]

# end
`;

function open(text: string) {
  const file = join(tempDir(), 'clients.yaml');
  writeFileSync(file, text);
  return { file, registry: RegistryFile.open(file, options), read: () => readFileSync(file, 'utf8') };
}

describe('RegistryFile keeps what an edit does not change byte for byte', () => {
  it('disable rewrites only the entry it changes', () => {
    const { registry, read } = open(styled());
    registry.setDisabled('b', true);
    registry.save(options);
    // b itself is in yaml's style now; every other byte is as it was.
    expect(read()).toBe(
      styled().replace(
        `      - { hash: "${H}", expires_at: 2099-01-01T00:00:00Z }\n`,
        `      - {hash: "${H}", expires_at: 2099-01-01T00:00:00Z}\n    disabled: true\n`,
      ),
    );
  });

  it('an edit that changes nothing leaves the file as it was', () => {
    const { registry, read } = open(styled());
    registry.setDisabled('b', false);
    registry.save(options);
    expect(read()).toBe(styled());
  });

  it('add appends after the last entry and touches nothing else', () => {
    const { registry, read } = open(styled());
    registry.add({ client_id: 'd', secrets: [{ hash: H }] });
    registry.save(options);
    expect(read()).toBe(styled().replace(`[{ hash: '${H}' }]\n`, `[{ hash: '${H}' }]\n  - client_id: d\n    secrets:\n      - hash: ${H}\n`));
  });

  it('remove takes the entry and the comment just above it', () => {
    const { registry, read } = open(styled());
    registry.remove('b');
    registry.save(options);
    const text = styled();
    expect(read()).toBe(text.slice(0, text.indexOf('\n\n\n  # b') + 1) + text.slice(text.indexOf('  - client_id: c')));
  });

  it('remove of the first entry keeps the comments above the list', () => {
    const { registry, read } = open(styled());
    registry.remove('a');
    registry.save(options);
    const text = styled();
    expect(read()).toBe(text.slice(0, text.indexOf('  - client_id: a')) + text.slice(text.indexOf('\n\n\n  # b') + 1));
  });

  it('rotateSecrets rewrites only that entry, as a block list', () => {
    const { registry, read } = open(styled());
    registry.rotateSecrets('a', [{ expiresAt: '2030-01-01T00:00:00Z' }], H);
    registry.save(options);
    const text = styled();
    const a = `  - client_id: a # first\n    secrets:\n      - hash: "${H}"\n        expires_at: 2030-01-01T00:00:00Z\n      - hash: ${H}\n    scopes: [x, y]\n`;
    expect(read()).toBe(text.slice(0, text.indexOf('  - client_id: a')) + a + text.slice(text.indexOf('\n\n\n  # b') + 1));
  });

  it('works on a list written flush with its key (`clients:` then `- client_id:`)', () => {
    const text = `clients:\n- client_id: a   # kept\n  secrets: [ { hash: "${H}" } ]\n- client_id: b\n  secrets: [ { hash: "${H}" } ]\n`;
    const { registry, read } = open(text);
    registry.setDisabled('b', true);
    registry.add({ client_id: 'c', secrets: [{ hash: H }] });
    registry.save(options);
    expect(read()).toBe(`clients:\n- client_id: a   # kept\n  secrets: [ { hash: "${H}" } ]\n- client_id: b\n  secrets: [{hash: "${H}"}]\n  disabled: true\n- client_id: c\n  secrets:\n    - hash: ${H}\n`);
  });

  it('re-renders a registry written as one flow list, meaning the same', () => {
    const { registry, read } = open(`clients: [ { client_id: a, secrets: [ { hash: "${H}" } ] } ]\n`);
    registry.setDisabled('a', true);
    registry.save(options);
    expect(parse(read())).toEqual({ clients: [{ client_id: 'a', secrets: [{ hash: H }], disabled: true }] });
  });
});
