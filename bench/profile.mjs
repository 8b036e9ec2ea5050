#!/usr/bin/env node
// node bench/profile.mjs [options]: where one endpoint's time goes. See HELP below.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LoadError, measure, preflight } from './lib/load.mjs';
import { freePort, startServer, stopAll } from './lib/processes.mjs';
import { wrkAvailable } from './lib/wrk.mjs';

const HELP = `Usage: node bench/profile.mjs [options]

Starts the production build (dist/, as npm start runs it) under node --cpu-prof with a fresh
config, drives one endpoint with wrk (autocannon without it) and stops the server; writes the
.cpuprofile (open it in Chrome DevTools or speedscope) and prints the self time by package and
the top functions.

Options:
  --endpoint E      token (Basic), token-post (secret in the body), introspection (default),
                    revocation-miss (revoking an unknown token), jwks
  --store S         sqlite (default), memory, or postgres (the database named by --postgres-url)
  --postgres-url U  with --store postgres (default postgres://postgres@127.0.0.1:5432/tollgate_profile)
  --algorithm A     keys.algorithm: RS256 (default), ES256 or EdDSA
  --log-level L     log.level (default: the config default, info)
  --set K=V         another config line, e.g. --set 'log: { introspections: each }' (repeatable)
  --seconds N       seconds of load (default 10)
  --connections N   concurrent connections (default 50)
  --top N           functions listed (default 25)
  --out DIR         where the .cpuprofile goes (default bench/results/profiles)
  --no-build        use dist/ as it is
  -h, --help        this text`;

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/cli/tollgate.cjs');
const SCOPE = 'bench:read';
const AUDIENCE = 'https://api.bench.test';
const ENDPOINTS = ['token', 'token-post', 'introspection', 'revocation-miss', 'jwks'];

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string', default: 'introspection' },
    store: { type: 'string', default: 'sqlite' },
    'postgres-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/tollgate_profile' },
    algorithm: { type: 'string', default: 'RS256' },
    'log-level': { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    top: { type: 'string', default: '25' },
    out: { type: 'string' },
    'no-build': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const die = (message) => {
  console.error(`profile: ${message}`);
  process.exit(1);
};
const whole = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) die(`--${name} must be a whole number ≥ 1`);
  return n;
};
if (!ENDPOINTS.includes(values.endpoint)) die(`--endpoint takes one of ${ENDPOINTS.join(', ')}`);
if (!['sqlite', 'memory', 'postgres'].includes(values.store)) die('--store is sqlite, memory or postgres');
if (!['RS256', 'ES256', 'EdDSA'].includes(values.algorithm)) die('--algorithm is RS256, ES256 or EdDSA');
if (values['log-level'] !== undefined && !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(values['log-level'])) die('--log-level is a pino level');
for (const s of values.set) if (!/^[a-z_]+: .+$/.test(s)) die(`--set takes a config line "key: value", not ${JSON.stringify(s)}`);
const seconds = whole('seconds');
const connections = whole('connections');
const top = whole('top');
const outDir = resolve(values.out ?? join(ROOT, 'bench/results/profiles'));

const work = mkdtempSync(join(tmpdir(), 'tollgate-profile-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const childEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' };
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function cli(args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: work, env: childEnv, encoding: 'utf8' });
  if (r.status !== 0) die(`tollgate ${args.slice(0, 2).join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** npm start's environment and Node flags, as bench/run.mjs reads them. */
function startSettings() {
  const start = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start;
  const m = /^((?:[A-Z_]+=\S+ )*)node ((?:--\S+ )*)dist\/cli\/tollgate\.cjs serve$/.exec(start);
  if (m === null) die(`package.json: unexpected start script: ${start}`);
  const env = Object.fromEntries(m[1].trim().split(/\s+/).filter(Boolean).map((kv) => kv.split('=', 2)));
  return { env, nodeFlags: m[2].trim().split(/\s+/).filter(Boolean) };
}

function request(endpoint, secrets, token) {
  const check = (b) => (typeof b.access_token === 'string' ? undefined : 'no access_token');
  switch (endpoint) {
    case 'token':
      return { method: 'POST', path: '/oauth2/token', headers: { ...FORM, authorization: basic('svc', secrets.svc) }, body: `grant_type=client_credentials&scope=${encodeURIComponent(SCOPE)}`, check };
    case 'token-post':
      return { method: 'POST', path: '/oauth2/token', headers: FORM, body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE, client_id: 'svc', client_secret: secrets.svc }).toString(), check };
    case 'introspection':
      return { method: 'POST', path: '/oauth2/introspect', headers: { ...FORM, authorization: basic('rs', secrets.rs) }, body: `token=${token}`, check: (b) => (b.active === true ? undefined : 'inactive') };
    case 'revocation-miss':
      // Revoking is one-shot; an unknown token exercises the same parsing, authentication and lookup.
      return { method: 'POST', path: '/oauth2/revoke', headers: { ...FORM, authorization: basic('svc', secrets.svc) }, body: 'token=not-a-known-token', check: undefined };
    default:
      return { method: 'GET', path: '/.well-known/jwks.json', check: (b) => (Array.isArray(b.keys) ? undefined : 'no keys') };
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a .cpuprofile: self time per node from the samples, grouped by package and by function.

/** The package a script URL belongs to: tollgate, a node_modules package, node itself, or V8. */
function packageOf(url) {
  if (url === '') return '(native/V8)';
  if (url.startsWith('node:')) return 'node (internals)';
  const at = url.lastIndexOf('node_modules/');
  if (at >= 0) {
    const rest = url.slice(at + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.includes('/dist/')) return 'tollgate';
  return url;
}

export function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i += 1) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const packages = new Map();
  const functions = new Map();
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    const name = callFrame.functionName || '(anonymous)';
    const pkg = name.startsWith('(') && callFrame.url === '' ? name : packageOf(callFrame.url);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
    const file = callFrame.url === '' ? '' : `${callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${callFrame.lineNumber + 1}`;
    const key = `${name} ${file}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalUs: total, packages: sorted(packages), functions: sorted(functions) };
}

function printSummary(s, busyOnly) {
  // Idle is time the event loop waited: not the server's cost.
  const idle = s.packages.find(([p]) => p === '(idle)')?.[1] ?? 0;
  const busy = s.totalUs - idle;
  const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\nself time by package (% of busy time, ${(busy / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle)`);
  for (const [p, us] of s.packages) if (p !== '(idle)') console.log(`  ${pct(us)}  ${p}`);
  console.log(`\ntop ${busyOnly} functions by self time`);
  for (const [f, us] of s.functions.filter(([f]) => !f.startsWith('(idle)')).slice(0, busyOnly)) console.log(`  ${pct(us)}  ${f}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!values['no-build']) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) die(`npm run build failed:\n${r.stdout}${r.stderr}`);
  }
  if (!existsSync(CLI)) die(`${relative(ROOT, CLI)} is missing: run npm run build`);
  const port = await freePort();
  const config = join(work, 'tollgate.yaml');
  const lines = [
    `issuer: http://127.0.0.1:${port}`,
    `listen: { host: 127.0.0.1, port: ${port} }`,
    'clients_file: ./clients.yaml',
    'tokens: { ttl: 3600 }',
    `keys: { dir: ./keys, algorithm: ${values.algorithm} }`,
    `store: ${values.store === 'memory' ? '{ kind: memory }' : values.store === 'postgres' ? `{ kind: postgres, url: "${values['postgres-url']}" }` : '{ kind: sqlite, path: ./tokens.db }'}`,
  ];
  const extra = [...values.set];
  if (values['log-level'] !== undefined) extra.push(`log: { level: ${values['log-level']} }`);
  // Several "log:" settings are merged into one mapping.
  const logParts = extra.filter((s) => s.startsWith('log: ')).map((s) => s.slice('log: '.length).replace(/^\{\s*|\s*\}$/g, ''));
  lines.push(...extra.filter((s) => !s.startsWith('log: ')));
  if (logParts.length) lines.push(`log: { ${logParts.join(', ')} }`);
  writeFileSync(config, `${lines.join('\n')}\n`);
  const secrets = {
    svc: cli(['client', 'add', 'svc', '--scope', SCOPE, '--audience', AUDIENCE, '--config', config]),
    rs: cli(['client', 'add', 'rs', '--introspect', '--audience', AUDIENCE, '--config', config]),
  };

  const profileDir = join(work, 'profile');
  const { env, nodeFlags } = startSettings();
  const server = await startServer({
    name: 'tollgate',
    args: [...nodeFlags, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, CLI, 'serve', '--config', config],
    env: { ...childEnv, ...env },
    url: `http://127.0.0.1:${port}`,
    healthPath: '/readyz',
  });
  let run;
  try {
    const token = (await preflight(server, request('token', secrets))).access_token;
    const req = request(values.endpoint, secrets, token);
    if (req.check !== undefined) await preflight(server, req);
    const generator = wrkAvailable() ? 'wrk' : 'autocannon';
    console.log(`profiling ${values.endpoint} (${values.store}, ${values.algorithm}, ${lines.concat().filter((l) => l.startsWith('log')).join(' ') || 'default log settings'}): ${generator}, ${connections} connections, ${seconds} s, load average ${loadavg()[0].toFixed(2)}`);
    run = await measure(server, req, { connections, seconds, generator });
  } catch (err) {
    await stopAll();
    die(err instanceof LoadError ? err.message : String(err.stack ?? err));
  }
  await stopAll(15_000);
  console.log(`${Math.round(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, CPU ${Math.round(run.cpuPerRequest ?? 0)} µs/req, RSS ${Math.round(run.rssPeak)} MiB`);
  const files = existsSync(profileDir) ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) die('the server wrote no .cpuprofile (did it exit cleanly?)');
  mkdirSync(outDir, { recursive: true });
  const text = readFileSync(join(profileDir, files[0]), 'utf8');
  const out = join(outDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${values.endpoint}-${values.store}-${values.algorithm}.cpuprofile`);
  writeFileSync(out, text);
  printSummary(summarise(JSON.parse(text)), top);
  console.log(`\nprofile: ${relative(process.cwd(), out)}`);
}

main().catch(async (err) => {
  await stopAll();
  die(String(err?.stack ?? err));
});
