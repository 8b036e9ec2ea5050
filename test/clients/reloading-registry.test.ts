import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/shared/config-error.js';
import { ReloadingClientRegistry } from '../../src/clients/reloading-registry.js';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { createLogger } from '../../src/server/log.js';
import { basic, buildTestApp, FORM, hashOf, LogCapture, tempDir } from '../helpers.js';

let hash: string;
beforeAll(async () => {
  hash = await hashOf('reload-secret-0123456789abcdefghijklmn');
});

const options = { defaultAudience: [] as string[] };

/** `n` clients whose audiences are all one alias of an anchor on the first. */
function sharedAudiences(n: number): string {
  const entries = Array.from({ length: n }, (_, i) => {
    const audiences = i === 0 ? '&aud [https://api.test]' : '*aud';
    return `  - client_id: svc-${i}\n    secrets: [{ hash: "${hash}" }]\n    audiences: ${audiences}\n`;
  });
  return `clients:\n${entries.join('')}`;
}

/** Ten levels of ten aliases each: 10^10 strings once written out, in a dozen lines. */
const ALIAS_BOMB = `x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
${Array.from({ length: 9 }, (_, i) => `x${i + 1}: &x${i + 1} [${Array(10).fill(`*x${i}`).join(', ')}]`).join('\n')}
clients: []
`;

function setup(text: string, opts: { allowEmpty?: boolean } = {}) {
  const file = join(tempDir(), 'clients.yaml');
  writeFileSync(file, text);
  const logs = new LogCapture();
  const registry = new ReloadingClientRegistry(file, { ...options, ...opts }, createLogger('info', logs));
  const edit = (next: string): boolean => {
    writeFileSync(file, next);
    return registry.reload();
  };
  return { file, logs, registry, edit };
}

function loadProblems(text: string): string[] {
  const file = join(tempDir(), 'clients.yaml');
  writeFileSync(file, text);
  try {
    loadRegistryFile(file, options);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').map((l) => l.replace(file, 'F'));
  }
  throw new Error('expected a ConfigError');
}

describe('YAML aliases in the registry', () => {
  it('loads 51 and more clients sharing one anchor (yaml stopped at 50 with "Excessive alias count")', () => {
    const file = join(tempDir(), 'clients.yaml');
    writeFileSync(file, sharedAudiences(500));
    const registry = loadRegistryFile(file, options);
    expect(registry.all()).toHaveLength(500);
    expect(registry.get('svc-499')!.audiences).toEqual(['https://api.test']);
  });

  it('takes a reload to many aliases', () => {
    const t = setup(sharedAudiences(2));
    expect(t.edit(sharedAudiences(51))).toBe(true);
    expect(t.registry.all()).toHaveLength(51);
  });

  it('refuses an alias bomb with one problem, at load and on reload, and keeps serving', () => {
    expect(loadProblems(ALIAS_BOMB)).toEqual([expect.stringMatching(/^F: YAML: its aliases expand to more than 1000000 values/)]);
    const t = setup(sharedAudiences(3));
    expect(t.edit(ALIAS_BOMB)).toBe(false);
    expect(t.logs.events('registry.rejected')).toEqual([expect.objectContaining({ problems: [expect.stringMatching(/alias bomb/)] })]);
    expect(t.registry.all()).toHaveLength(3);
  });

  it('refuses an alias with no anchor before it and one inside its own anchor, naming the line, without crashing a reload', () => {
    expect(loadProblems('clients:\n  - client_id: a\n    audiences: *nowhere\n')).toEqual(['F:3: YAML: alias *nowhere has no anchor &nowhere before it']);
    expect(loadProblems('x: &loop [a, *loop]\nclients: []\n')).toEqual(['F:1: YAML: alias *loop refers to a node that contains it']);
    const t = setup(sharedAudiences(1));
    expect(t.edit('clients:\n  - client_id: a\n    audiences: *nowhere\n')).toBe(false);
    expect(t.edit('x: &loop [a, *loop]\nclients: []\n')).toBe(false);
    expect(t.logs.events('registry.rejected')).toHaveLength(2);
    expect(t.registry.get('svc-0')).toBeDefined();
  });
});

describe('an emptied registry', () => {
  it('refuses a reload that drops every client (an emptied file, no list, an empty list) and keeps the clients', () => {
    const t = setup(sharedAudiences(2));
    for (const text of ['', '# nothing\n', 'clients:\n', 'clients: []\n']) {
      expect(t.edit(text)).toBe(false);
      expect(t.registry.get('svc-1')).toBeDefined();
    }
    const rejected = t.logs.events('registry.rejected');
    expect(rejected).toHaveLength(4);
    expect(rejected[0]!.problems).toEqual([`${t.file}: holds no clients where the running registry has 2: refused (allow_empty_registry is false); disable clients rather than remove the last one`]);
    // A registry that keeps one client, disabled or not, is an ordinary edit.
    expect(t.edit(sharedAudiences(1))).toBe(true);
    expect(t.registry.all()).toHaveLength(1);
  });

  it('keeps answering 200 to a client after `: > clients.yaml` (every client got 401 before)', async () => {
    const secret = 'reload-secret-0123456789abcdefghijklmn';
    const t = await buildTestApp({ clients: sharedAudiences(1) });
    const token = () => t.app.inject({ method: 'POST', url: '/oauth2/token', headers: { ...FORM, authorization: basic('svc-0', secret) }, payload: 'grant_type=client_credentials' });
    expect((await token()).statusCode).toBe(200);
    writeFileSync(t.fixture.clientsFile, '');
    expect(t.registry.reload()).toBe(false);
    expect((await token()).statusCode).toBe(200);
    expect(t.logs.events('registry.rejected')).toHaveLength(1);

    // allow_empty_registry in tollgate.yaml reaches the registry.
    const allowed = await buildTestApp({
      clients: sharedAudiences(1),
      config: 'issuer: https://auth.test\nclients_file: ./clients.yaml\nkeys: { dir: ./keys }\nstore: { kind: memory }\nallow_empty_registry: true\n',
    });
    writeFileSync(allowed.fixture.clientsFile, '');
    expect(allowed.registry.reload()).toBe(true);
  });

  it('takes it when allow_empty_registry is true', () => {
    const t = setup(sharedAudiences(2), { allowEmpty: true });
    expect(t.edit('')).toBe(true);
    expect(t.registry.all()).toHaveLength(0);
  });

  it('starts on an empty registry with a registry.empty warning, and takes a first client', () => {
    const t = setup('clients: []\n');
    const [warning, ...more] = t.logs.events('registry.empty');
    expect(more).toEqual([]);
    expect(warning).toMatchObject({ file: t.file });
    expect([40, 'warn']).toContain(warning!.level);
    expect(t.edit('')).toBe(true);
    expect(t.edit(sharedAudiences(1))).toBe(true);
  });
});
