import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { BEGIN, END, fieldRows, typeOf, undescribed } from '../../scripts/gen-reference.mjs';
import { AUTH_METHODS, StaticClientRegistry } from '../../src/clients/registry.js';
import { configSchema } from '../../src/config/config.js';
import { registryFileSchema } from '../../src/clients/client-schema.js';
import { durationSchema } from '../../src/shared/field-schemas.js';
import { buildMetadata } from '../../src/oauth/metadata.js';
import { read, ROOT } from './markdown.js';

// docs/reference/ is partly generated from the code (npm run docs); these tests fail when a
// page no longer matches the code, and check the hand-written lists that have drifted before.

const SCRIPT = join(ROOT, 'scripts/gen-reference.mjs');
const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

function generator(...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8' });
}

function copyOfReference(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reference-'));
  folders.push(dir);
  cpSync(join(ROOT, 'docs/reference'), dir, { recursive: true });
  return dir;
}

describe('the generated reference pages', () => {
  it('match the code (run npm run docs when this fails)', () => {
    const result = generator('--check');
    expect(result.stderr, 'docs/reference/ is out of date with the code: run `npm run docs` and commit the pages').toBe('');
    expect(result.status).toBe(0);
  });

  it('--check names a page whose generated part was edited or is missing, and says to run npm run docs', () => {
    const dir = copyOfReference();
    const page = join(dir, 'configuration.md');
    writeFileSync(page, readFileSync(page, 'utf8').replace('| `issuer` |', '| `issuer (edited)` |'));
    const stale = generator('--check', '--dir', dir);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toMatch(/configuration\.md is out of date with the code: run npm run docs/);

    writeFileSync(page, readFileSync(page, 'utf8').replace(END, ''));
    const broken = generator('--check', '--dir', dir);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/configuration\.md: the END marker of the generated part is missing/);
  });

  it('writes the pages it checks, keeping the hand-written text around the markers', () => {
    const dir = copyOfReference();
    const page = join(dir, 'registry.md');
    const before = readFileSync(page, 'utf8');
    writeFileSync(page, `${before.slice(0, before.indexOf(BEGIN) + BEGIN.length)}\nstale\n${before.slice(before.indexOf(END))}`);
    expect(generator('--dir', dir).status).toBe(0);
    expect(readFileSync(page, 'utf8')).toBe(before);
    expect(generator('--check', '--dir', dir).status).toBe(0);
  });

  it('has a description for every field of tollgate.yaml and clients.yaml', () => {
    expect(undescribed(fieldRows(configSchema))).toEqual([]);
    expect(undescribed(fieldRows(registryFileSchema))).toEqual([]);
  });

  it('lists every field of the config with its environment variable', () => {
    const rows = fieldRows(configSchema, (p) => `TOLLGATE_${p.toUpperCase().replaceAll('.', '__')}`);
    const text = read('docs/reference/configuration.md');
    for (const row of rows) expect(text).toContain(`| \`${row.path}\` |`);
    expect(rows.find((r) => r.path === 'listen.port')).toMatchObject({ type: 'integer, 0 to 65535', default: '`8080`', env: 'TOLLGATE_LISTEN__PORT' });
    // A mapping has no variable of its own; its fields do.
    expect(rows.find((r) => r.path === 'listen')!.env).toBeUndefined();
  });
});

describe('fieldRows', () => {
  it('walks any zod field: objects, lists of objects, enums, defaults, prefaults, unions, records, pipes and refinements', () => {
    const schema = z.strictObject({
      name: z.string().min(1).describe('a name'),
      mode: z.enum(['a', 'b']).default('a').describe('a mode'),
      after: durationSchema(0, 3600).default(60).describe('a wait'),
      either: z.union([z.number().int(), z.boolean()]).optional().describe('one or the other'),
      labels: z.record(z.string(), z.string()).optional().describe('labels'),
      count: z.preprocess((v) => Number(v), z.number().int().min(1).max(9)).describe('a count'),
      checked: z.string().superRefine(() => {}).transform((s) => s.length).describe('checked'),
      nested: z
        .strictObject({ flag: z.boolean().default(false).describe('a flag') })
        .prefault({})
        .describe('nested'),
      items: z.array(z.strictObject({ id: z.string().describe('an id') })).nullable().default([]).describe('items'),
      tags: z.array(z.enum(['x', 'y'])).min(1).optional().describe('tags'),
      bare: z.number(),
    });
    expect(fieldRows(schema).map((r) => [r.path, r.type, r.default, r.description])).toEqual([
      ['name', 'string (non-empty)', 'required', 'a name'],
      ['mode', 'one of `a`, `b`', '`a`', 'a mode'],
      ['after', 'duration: seconds, or 30s, 15m, 24h, 7d; 0s to 1h', '`60`', 'a wait'],
      ['either', 'integer or boolean', 'none', 'one or the other'],
      ['labels', 'mapping of string to string', 'none', 'labels'],
      ['count', 'integer, 1 to 9', 'required', 'a count'],
      ['checked', 'string', 'required', 'checked'],
      ['nested', 'mapping', "(its fields' defaults)", 'nested'],
      ['nested.flag', 'boolean', '`false`', 'a flag'],
      ['items', 'list of mappings', '`[]`', 'items'],
      ['items[].id', 'string', 'required', 'an id'],
      ['tags', 'list of any of `x`, `y` (at least 1)', 'none', 'tags'],
      ['bare', 'number', 'required', ''],
    ]);
    expect(undescribed(fieldRows(schema))).toEqual(['bare']);
    const variants = z.strictObject({
      source: z
        .union([z.strictObject({ kind: z.literal('dir').describe('a folder'), dir: z.string().describe('where') }), z.strictObject({ kind: z.literal('store').describe('the store') })])
        .describe('where from'),
    });
    expect(fieldRows(variants).map((r) => [r.path, r.type])).toEqual([
      ['source', 'mapping'],
      ['source.kind', '`dir`'],
      ['source.dir', 'string'],
    ]);
    expect(typeOf(z.literal('sig'))).toBe('`sig`');
  });
});

describe('hand-written reference lists', () => {
  it('the metadata table has exactly the fields the server publishes, and every auth method', () => {
    const metadata = buildMetadata({ issuer: 'https://auth.example.com', publishScopes: true, mtls: true }, new StaticClientRegistry([]), ['RS256']);
    const text = read('docs/reference/endpoints.md');
    const table = text.slice(text.indexOf('## Metadata and JWKS'));
    const documented = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.sort()).toEqual(Object.keys(metadata).sort());
    const methodsRow = table.split('\n').find((l) => l.startsWith('| `token_endpoint_auth_methods_supported`'))!;
    for (const method of AUTH_METHODS) expect(methodsRow, method).toContain(`\`${method}\``);
  });

  it('the log events page has a row for every event the code logs', () => {
    const events = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts')) for (const m of read(join(dir, e.name)).matchAll(/event: '([a-z_.]+)'/g)) events.add(m[1]!);
      }
    };
    walk('src');
    expect(events.size).toBeGreaterThan(20);
    const text = read('docs/reference/log-events.md');
    const missing = [...events].filter((e) => !text.includes(`\`${e}\``));
    expect(missing, 'events logged by the code with no row in docs/reference/log-events.md').toEqual([]);
  });
});
