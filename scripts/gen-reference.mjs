#!/usr/bin/env node
// Regenerates the parts of docs/reference/ that come from the code: the fields of tollgate.yaml
// and clients.yaml (from their zod schemas and the .describe() text beside each field), the CLI
// (from its help texts) and the metric names. It reads the built code in dist/, so run it as
// `npm run docs`, which builds first.
//
//   node scripts/gen-reference.mjs           write the pages
//   node scripts/gen-reference.mjs --check   exit 1, naming each page, when a page is out of date
//   --dir DIR                                the reference folder (default docs/reference)
//
// Each page keeps its hand-written text; only what lies between the BEGIN and END markers is
// generated. A page that does not exist yet is created with a title and the markers.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');

export const BEGIN = '<!-- BEGIN GENERATED: npm run docs writes this part from the code; edit the code, not this -->';
export const END = '<!-- END GENERATED -->';

const load = (path) => import(pathToFileURL(join(DIST, path)).href);

// ---------------------------------------------------------------- zod schemas

/** The wrappers a field may sit in, outermost first, down to the schema that says what it is. */
function unwrap(schema) {
  const layers = [];
  let s = schema;
  for (;;) {
    layers.push(s);
    const def = s._zod.def;
    if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional', 'success'].includes(def.type)) s = def.innerType;
    else if (def.type === 'pipe') s = def.in._zod.def.type === 'transform' ? def.out : def.in; // preprocess : transform
    else if (def.type === 'lazy') s = def.getter();
    else return { layers, core: s };
  }
}

/** Registry metadata of the field: the first description (or docType) found from the outside in. */
function metaOf(layers, key) {
  for (const s of layers) {
    const meta = z.globalRegistry.get(s);
    if (meta?.[key] !== undefined) return meta[key];
  }
  return undefined;
}

function jsonSchemaOf(schema) {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  } catch {
    return {};
  }
}

const code = (v) => `\`${v}\``;

/** The bounds a number field states; `.int()` alone brings the safe-integer ones, which say nothing. */
function range(js) {
  const stated = (v) => (v === undefined || Math.abs(v) >= Number.MAX_SAFE_INTEGER ? undefined : v);
  const min = stated(js.minimum ?? js.exclusiveMinimum);
  const max = stated(js.maximum ?? js.exclusiveMaximum);
  if (min !== undefined && max !== undefined) return `, ${min} to ${max}`;
  if (min !== undefined) return `, at least ${min}`;
  if (max !== undefined) return `, at most ${max}`;
  return '';
}

/** What a schema accepts, in words: its type and the values it allows. */
export function typeOf(schema) {
  const { layers, core } = unwrap(schema);
  const docType = metaOf(layers, 'docType');
  if (docType !== undefined) return docType;
  const def = core._zod.def;
  switch (def.type) {
    case 'string': {
      const js = jsonSchemaOf(core);
      if (js.format === 'uri' || js.format === 'url') return 'URL';
      return js.minLength > 0 ? 'string (non-empty)' : 'string';
    }
    case 'number': {
      const js = jsonSchemaOf(core);
      return `${js.type === 'integer' ? 'integer' : 'number'}${range(js)}`;
    }
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'enum':
      return `one of ${core.options.map(code).join(', ')}`;
    case 'literal':
      return def.values.map((v) => code(v)).join(' or ');
    case 'array': {
      const js = jsonSchemaOf(core);
      const least = js.minItems > 0 ? ` (at least ${js.minItems})` : '';
      const element = typeOf(def.element);
      return `${element.startsWith('one of ') ? `list of any of ${element.slice(7)}` : `list of ${plural(element)}`}${least}`;
    }
    case 'object':
      return 'mapping';
    case 'tuple':
      return `list of ${def.items.map(typeOf).join(', ')}`;
    case 'record':
      return `mapping of ${typeOf(def.keyType)} to ${typeOf(def.valueType)}`;
    case 'union':
      return [...new Set(def.options.map(typeOf))].join(' or ');
    case 'null':
      return 'null';
    default:
      return def.type;
  }
}

/** `list of strings`, `list of mappings`: the element's type in the plural, when it starts with a noun. */
function plural(type) {
  return type.replace(/^(string|mapping|audience|integer|number|boolean|duration|date|timestamp|URL)\b/, '$1s');
}

function defaultOf(layers) {
  for (const s of layers) {
    const def = s._zod.def;
    if (def.type === 'default') {
      const value = typeof def.defaultValue === 'function' ? def.defaultValue() : def.defaultValue;
      return typeof value === 'string' ? code(value) : code(JSON.stringify(value));
    }
    if (def.type === 'prefault') return '(its fields\' defaults)';
    if (def.type === 'optional') return 'none';
  }
  return 'required';
}

/**
 * The object a schema holds, if any: through wrappers, through lists for `[]` paths, and through
 * unions of objects (each variant's fields, the first variant's first).
 */
function objectOf(schema) {
  const { core } = unwrap(schema);
  const def = core._zod.def;
  if (def.type === 'object') return { shape: def.shape, suffix: '' };
  if (def.type === 'array') {
    const inner = objectOf(def.element);
    return inner && { shape: inner.shape, suffix: `[]${inner.suffix}` };
  }
  if (def.type === 'union') {
    const variants = def.options.map(objectOf).filter((v) => v !== undefined && v.suffix === '');
    if (variants.length === 0) return undefined;
    const shape = {};
    for (const v of variants) for (const [name, field] of Object.entries(v.shape)) if (!(name in shape)) shape[name] = field;
    return { shape, suffix: '' };
  }
  return undefined;
}

/**
 * One row per field, depth first in the schema's order: `listen.tls.cert`, `clients[].secrets[].hash`.
 * `env` gives the environment variable that overrides a path, for the config.
 */
export function fieldRows(schema, env) {
  const rows = [];
  const walk = (shape, prefix, inList) => {
    for (const [name, field] of Object.entries(shape)) {
      const path = `${prefix}${name}`;
      const { layers } = unwrap(field);
      rows.push({
        path,
        type: typeOf(field),
        default: defaultOf(layers),
        // A mapping cannot be given in one variable (its fields can), nor can part of a list.
        env: env && !inList && objectOf(field) === undefined ? env(path) : undefined,
        description: metaOf(layers, 'description') ?? '',
      });
      const inner = objectOf(field);
      if (inner) walk(inner.shape, `${path}${inner.suffix}.`, inList || inner.suffix !== '');
    }
  };
  const root = objectOf(schema);
  if (!root) throw new TypeError('the schema is not an object');
  walk(root.shape, '', false);
  return rows;
}

const cell = (s) => String(s).replaceAll('|', '\\|').replaceAll('\n', ' ');

function fieldTable(rows, withEnv) {
  const head = withEnv ? '| field | type | default | environment | description |\n|---|---|---|---|---|' : '| field | type | default | description |\n|---|---|---|---|';
  const lines = rows.map((r) =>
    withEnv
      ? `| ${code(r.path)} | ${cell(r.type)} | ${cell(r.default)} | ${r.env ? code(r.env) : ''} | ${cell(r.description)} |`
      : `| ${code(r.path)} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`,
  );
  return [head, ...lines].join('\n');
}

/** Rows whose description is empty: every field must say what it is for. */
export function undescribed(rows) {
  return rows.filter((r) => r.description.trim() === '').map((r) => r.path);
}

// ---------------------------------------------------------------- pages

const envName = (path) => `TOLLGATE_${path.toUpperCase().replaceAll('.', '__')}`;

async function configPart() {
  const { configSchema } = await load('config/config.js');
  const rows = fieldRows(configSchema, envName);
  return { rows, text: fieldTable(rows, true) };
}

async function registryPart() {
  const { registryFileSchema } = await load('clients/client-schema.js');
  const rows = fieldRows(registryFileSchema);
  return { rows, text: fieldTable(rows, false) };
}

async function cliPart() {
  const { COMMANDS, mainHelp } = await load('cli/commands.js');
  const helps = new Map();
  // Only the modules that define a help text: importing main.js would run the command.
  const withHelp = readdirSync(join(DIST, 'cli')).filter((f) => f.endsWith('.js') && /\bexport const [A-Z_]+_HELP\b/.test(readFileSync(join(DIST, 'cli', f), 'utf8')));
  for (const file of withHelp.sort()) {
    const module = await load(`cli/${file}`);
    for (const [name, value] of Object.entries(module)) if (/_HELP$/.test(name) && typeof value === 'string') helps.set(name, value);
  }
  const fence = (text) => `\`\`\`text\n${text}\n\`\`\``;
  const sections = [`### tollgate --help\n\n${fence(mainHelp())}`];
  for (const command of COMMANDS) {
    const key = `${command.name.toUpperCase().replaceAll('-', '_')}_HELP`;
    const help = helps.get(key);
    if (help === undefined) throw new Error(`no ${key} exported from dist/cli/ for the command "${command.name}"`);
    helps.delete(key);
    sections.push(`### tollgate ${command.name} --help\n\n${fence(help)}`);
  }
  for (const [name, help] of helps) sections.push(`### ${name}\n\n${fence(help)}`);
  return { rows: [], text: sections.join('\n\n') };
}

async function metricsPart() {
  const { Metrics } = await load('metrics/metrics.js');
  const metrics = new Metrics({ processMetrics: false });
  const lines = ['| metric | type | labels | what |', '|---|---|---|---|'];
  for (const m of metrics.registry.getMetricsAsArray()) {
    lines.push(`| ${code(m.name)} | ${m.type} | ${(m.labelNames ?? []).map(code).join(', ')} | ${cell(m.help)} |`);
  }
  lines.push('| `tollgate_process_*`, `tollgate_nodejs_*` | | | the process: CPU, memory, event loop lag, GC (prom-client\'s default metrics) |');
  return { rows: [], text: lines.join('\n') };
}

export const PAGES = [
  { file: 'configuration.md', title: 'Configuration reference (tollgate.yaml)', part: configPart, source: 'src/config/config.ts' },
  { file: 'registry.md', title: 'Client registry reference (clients.yaml)', part: registryPart, source: 'src/clients/client-schema.ts, src/clients/federation-schema.ts' },
  { file: 'cli.md', title: 'CLI reference', part: cliPart, source: 'the *_HELP texts of src/cli/' },
  { file: 'metrics.md', title: 'Metrics', part: metricsPart, source: 'src/metrics/metrics.ts' },
];

/** The page with its generated part replaced; throws when the markers are missing or out of order. */
export function splice(page, generated, file) {
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start === -1 || end === -1 || end < start) throw new Error(`${file}: the ${start === -1 ? 'BEGIN' : 'END'} marker of the generated part is missing`);
  return `${page.slice(0, start + BEGIN.length)}\n\n${generated}\n\n${page.slice(end)}`;
}

/** Every page as it should be: [{ path, expected, actual }]. */
export async function renderPages(dir) {
  const out = [];
  for (const page of PAGES) {
    const path = join(dir, page.file);
    const actual = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    const { rows, text } = await page.part();
    // The page is still written; reference.test.ts fails until every field says what it is for.
    const missing = undescribed(rows);
    if (missing.length > 0) console.error(`warning: ${page.source}: add .describe('…') to ${missing.join(', ')}`);
    const base = actual ?? `# ${page.title}\n\n${BEGIN}\n${END}\n`;
    out.push({ path, expected: splice(base, text, path), actual });
  }
  return out;
}

async function main() {
  const { values } = parseArgs({ options: { check: { type: 'boolean' }, dir: { type: 'string' } } });
  const dir = resolve(values.dir ?? join(ROOT, 'docs/reference'));
  if (!existsSync(join(DIST, 'config/config.js'))) {
    console.error('dist/ is missing: run npm run docs (it builds first), or npm run build');
    return 1;
  }
  const pages = await renderPages(dir);
  const stale = pages.filter((p) => p.expected !== p.actual);
  if (values.check) {
    for (const p of stale) console.error(`${relative(ROOT, p.path)} is out of date with the code: run npm run docs`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const p of stale) {
    mkdirSync(dirname(p.path), { recursive: true });
    writeFileSync(p.path, p.expected);
    console.log(`wrote ${relative(ROOT, p.path)}`);
  }
  if (stale.length === 0) console.log('docs/reference is up to date');
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
