import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { deleteByPrefix } from './store/delete-by-prefix.js';

// Runs once per `vitest` run, before any test file, in the main process: builds what the CLI
// tests run, chooses where in Redis this run may write, and gives the tests that run tollgate as
// another user a copy of it that user can read. What it chooses reaches the tests by inject().

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis database of this run: TEST_REDIS_URL, or the local server with a database chosen here. */
    redisUrl: string;
    /** The key prefix every Redis key of this run starts with; the teardown deletes them all. */
    redisPrefix: string;
    /**
     * A PostgreSQL database of this run's own, created here and dropped by the teardown: its URL,
     * or '' when no server answered (the tests that need one skip locally and fail in CI).
     */
    postgresUrl: string;
    /** dist/cli/tollgate.cjs in a folder any user can read, when the tests run as root; else ''. */
    cliForOtherUsers: string;
  }
}

const ROOT = resolve(import.meta.dirname, '..');

let redisUrl = '';
let redisPrefix = '';
let cliCopy: string | undefined;
let postgresDb: { server: string; name: string } | undefined;

export async function setup(project: TestProject): Promise<void> {
  build();
  redisUrl = await chooseRedisUrl();
  redisPrefix = `tollgate-test:${randomUUID()}:`;
  project.provide('redisUrl', redisUrl);
  project.provide('redisPrefix', redisPrefix);
  project.provide('postgresUrl', await createRunDatabase());
  cliCopy = process.getuid?.() === 0 ? copyForOtherUsers() : undefined;
  project.provide('cliForOtherUsers', cliCopy === undefined ? '' : join(cliCopy, 'dist/cli/tollgate.cjs'));
}

export async function teardown(): Promise<void> {
  if (cliCopy !== undefined) rmSync(cliCopy, { recursive: true, force: true });
  await deleteRunKeys();
  await dropRunDatabase();
}

/**
 * The server TEST_POSTGRES_URL names (a URL to its maintenance database, e.g.
 * postgres://postgres@127.0.0.1:5432/postgres), else the local one with trust auth.
 */
const POSTGRES_SERVER = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function adminClient(): postgres.Sql {
  return postgres(POSTGRES_SERVER, { max: 1, connect_timeout: 3, onnotice: () => {}, fetch_types: false });
}

/** A fresh database for this run, so that no test meets another run's tables. */
async function createRunDatabase(): Promise<string> {
  const name = `tollgate_test_${randomUUID().replaceAll('-', '')}`;
  const sql = adminClient();
  try {
    await sql.unsafe(`CREATE DATABASE ${name}`);
  } catch {
    return '';
  } finally {
    await sql.end({ timeout: 1 });
  }
  postgresDb = { server: POSTGRES_SERVER, name };
  const url = new URL(POSTGRES_SERVER);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropRunDatabase(): Promise<void> {
  if (postgresDb === undefined) return;
  const sql = adminClient();
  try {
    // FORCE: a connection a failed test left open must not keep the database alive.
    await sql.unsafe(`DROP DATABASE IF EXISTS ${postgresDb.name} WITH (FORCE)`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * The CLI tests run dist/, so a bare `vitest run` builds it first rather than test what an
 * older build left there. One compile per run, a few seconds.
 */
function build(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    const out = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`tsc -p tsconfig.build.json failed:\n${String(out.stdout ?? '')}${String(out.stderr ?? '')}`);
  }
}

/** A connection for a quick look, that fails at once rather than retries. */
function quickClient(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  client.on('error', () => {});
  return client;
}

/**
 * TEST_REDIS_URL names the database outright; TEST_REDIS_DB picks a database on the local
 * server. Otherwise the run takes the highest-numbered empty database of the local server other
 * than 0, the one applications use by default, so a developer's own data is never beside the
 * tests'. Two runs may share it: their key prefixes differ.
 */
async function chooseRedisUrl(): Promise<string> {
  if (process.env.TEST_REDIS_URL) return process.env.TEST_REDIS_URL;
  const base = 'redis://127.0.0.1:6379';
  if (process.env.TEST_REDIS_DB) return `${base}/${process.env.TEST_REDIS_DB}`;
  const client = quickClient(base);
  try {
    await client.connect();
    let databases = 16;
    try {
      const reply = (await client.config('GET', 'databases')) as string[];
      if (Number(reply[1]) > 1) databases = Number(reply[1]);
    } catch {
      // CONFIG may be renamed or refused; 16 is Redis's default.
    }
    for (let db = databases - 1; db >= 1; db--) {
      await client.select(db);
      if ((await client.dbsize()) === 0) return `${base}/${db}`;
    }
    return `${base}/${databases - 1}`;
  } catch {
    // No Redis here: the tests that need it skip locally and fail in CI, naming this URL.
    return `${base}/15`;
  } finally {
    client.disconnect();
  }
}

/** Every key of this run, deleted by prefix with SCAN and UNLINK: never FLUSHDB on a shared server. */
async function deleteRunKeys(): Promise<void> {
  if (redisUrl === '' || redisPrefix === '') return;
  const client = quickClient(redisUrl);
  try {
    await client.connect();
  } catch {
    return;
  }
  try {
    await deleteByPrefix(client, redisPrefix);
  } finally {
    client.disconnect();
  }
}

/**
 * Root ignores file modes, so the tests that need a permission to be missing run tollgate as
 * nobody. That user may not be able to enter the checkout (a clone under /root, or in a mktemp -d
 * folder) and so could not load dist/ or its dependencies: it gets a copy of dist/, package.json
 * and the production dependencies in a folder anyone can read.
 */
function copyForOtherUsers(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
  const modules = join(ROOT, 'node_modules') + sep;
  const packages = listed.stdout
    .split('\n')
    .filter((p) => p.startsWith(modules))
    .sort();
  let last: string | undefined;
  for (const path of packages) {
    // A package nested in one already copied came along with it.
    if (last !== undefined && path.startsWith(last + sep)) continue;
    cpSync(path, join(dir, relative(ROOT, path)), { recursive: true });
    last = path;
  }
  if (packages.length === 0) throw new Error(`npm ls --omit=dev listed no dependencies to copy: ${listed.stderr}`);
  chmodSync(dir, 0o755);
  const made = spawnSync('chmod', ['-R', 'a+rX', dir]);
  if (made.status !== 0) throw new Error(`chmod -R a+rX ${dir} failed`);
  return dir;
}
