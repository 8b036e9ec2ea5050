import { execFile } from 'node:child_process';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { API, client, registryYaml } from '../builders.js';
import { writeFixture } from '../helpers.js';
import { ecPem, ODD_PEM_FORMS } from '../keys/odd-pem.js';
import { CLI, startServerProcess } from '../server-process.js';
import { plainSql, POSTGRES_URL, requirePostgres } from '../store/postgres-helpers.js';

const SECRET = 'workers-secret-0123456789abcdefghijklmnopq';

async function fixture(store: string) {
  const state = writeFixture({ clients: '' });
  const f = writeFixture({
    config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ${join(state.dir, 'keys')} }
store: ${store.replace('STATE', state.dir)}
log: { level: info }
`,
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
  });
  return { ...f, keysDir: join(state.dir, 'keys') };
}

/** How many log lines of this event the process has written. */
const count = (out: string, event: string) => out.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;

async function waitUntil(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Both workers have logged that they listen. */
const BOTH_STARTED = /"event":"server.started"[\s\S]*"event":"server.started"/;

/** Runs `tollgate serve --workers N` where it is expected to fail; resolves how it failed. */
async function serveFailure(configFile: string, workers: string): Promise<{ code: number; stdout: string; stderr: string } | undefined> {
  return promisify(execFile)(process.execPath, [CLI, 'serve', '--workers', workers, '--config', configFile]).then(
    () => undefined,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

const pidsIn = (out: string) => new Set([...out.matchAll(/"pid":(\d+)[^\n]*"event":"server.started"/g)].map((m) => Number(m[1])));

async function token(url: string): Promise<number> {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return res.status;
}

describe('tollgate serve --workers', () => {
  it('runs two workers on one port, both answering, and replaces one that dies', async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/tokens.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);
    const pids = pidsIn(server.stdout());
    expect(pids.size).toBe(2);
    expect(pids.has(server.proc.pid!)).toBe(false);

    // Keep-alive off, so that the kernel spreads connections over both workers.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => token(server.url)));
    expect(statuses).toEqual(Array(20).fill(200));

    const [victim] = pids;
    process.kill(victim!, 'SIGKILL');
    await server.waitForOutput(/"event":"worker.died"/);
    const deadline = Date.now() + 15_000;
    while (pidsIn(server.stdout()).size < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(pidsIn(server.stdout()).size).toBe(3);
    expect(await token(server.url)).toBe(200);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it.skipIf(!requirePostgres())('runs two workers on one PostgreSQL store, each with its own pool, every token recorded', async () => {
    // A database of this test's own, so that counting its rows counts only these tokens.
    const db = `${new URL(POSTGRES_URL).pathname.slice(1)}_workers`;
    const admin = plainSql();
    await admin.unsafe(`CREATE DATABASE ${db}`);
    try {
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${db}`;
      const f = await fixture(`{ kind: postgres, url: "${url}" }`);
      const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
      await server.waitForOutput(BOTH_STARTED);
      expect(pidsIn(server.stdout()).size).toBe(2);
      const statuses = await Promise.all(Array.from({ length: 20 }, () => token(server.url)));
      expect(statuses).toEqual(Array(20).fill(200));
      const sql = plainSql(url.toString());
      try {
        const [row] = await sql`SELECT count(*)::int AS n FROM tollgate_tokens`;
        expect(row!.n).toBe(20);
      } finally {
        await sql.end();
      }
      expect(server.stderr()).toBe('');
      expect(await server.stop('SIGTERM')).toBe(0);
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('serves /metrics summed over all workers, whichever worker answers the scrape', async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/tokens.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);

    // Concurrent requests open as many connections, which the primary deals out to both workers.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => token(server.url)));
    expect(statuses).toEqual(Array(20).fill(200));

    // A connection per scrape, so that scrapes land on both workers too.
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${server.url}/metrics`, { headers: { connection: 'close' } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toMatch(/^tollgate_tokens_issued_total\{client_id="svc"\} 20$/m);
      expect(text).toMatch(/^tollgate_http_requests_total\{endpoint="\/oauth2\/token",status="200"\} 20$/m);
      // The same registry in both workers: counted once, not twice.
      expect(text).toMatch(/^tollgate_registry_clients 1$/m);
      expect(text).toMatch(/^tollgate_signing_key_created_timestamp_seconds \d+/m);
    }
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('answers a scrape with 503 while a worker does not answer, and with the sum again once it does', async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/tokens.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);
    expect(await token(server.url)).toBe(200);
    const [stopped] = pidsIn(server.stdout());
    const scrape = () =>
      fetch(`${server.url}/metrics`, { headers: { connection: 'close' } }).then(async (res) => ({ status: res.status, text: await res.text() }));

    process.kill(stopped!, 'SIGSTOP');
    let scrapes: Promise<{ status: number; text: string }>[] = [];
    try {
      // Two connections: the primary gives at most one to the stopped worker. The scrape that
      // reaches the running worker waits for the stopped one, and is answered 503 in the end.
      scrapes = [scrape(), scrape()];
      const first = await Promise.race(scrapes);
      expect(first.status).toBe(503);
      expect(first.text).toBe('metrics unavailable\n');
    } finally {
      process.kill(stopped!, 'SIGCONT');
    }
    // A scrape held by the stopped worker is answered once it runs again, as every later one.
    for (const r of await Promise.all(scrapes)) expect([200, 503]).toContain(r.status);
    const again = await scrape();
    expect(again.status).toBe(200);
    expect(again.text).toMatch(/^tollgate_tokens_issued_total\{client_id="svc"\} 1$/m);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('refuses the memory store with more than one worker, in one line', async () => {
    const f = await fixture('{ kind: memory }');
    const err = await serveFailure(f.configFile, '2');
    expect(err?.code).toBe(1);
    expect(err!.stderr.trim().split('\n')).toHaveLength(1);
    expect(err!.stderr).toMatch(/store.kind memory .* cannot serve 2 workers/);
  });

  it('prepares a new SQLite file before the workers start, and reports a bad one once, in one line', async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/fresh.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);
    expect(server.stdout()).not.toMatch(/worker.died/);
    expect(await server.stop('SIGTERM')).toBe(0);

    const junk = await fixture(`{ kind: sqlite, path: ${join(f.dir, 'junk.db')} }`);
    writeFileSync(join(f.dir, 'junk.db'), 'not a database; '.repeat(300));
    const err = await serveFailure(junk.configFile, '2');
    expect(err?.code).toBe(1);
    expect(err!.stderr.trim().split('\n')).toHaveLength(1);
    expect(err!.stderr).toMatch(/junk\.db: cannot (open|prepare) the token store/);
    // Refused by the primary: no worker was started to die on it.
    expect(err!.stdout).not.toMatch(/worker/);
  });

  it('keeps both workers when a key file jose alone could not read is dropped into keys.dir', async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/tokens.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);
    for (const [i, [, odd]] of ODD_PEM_FORMS.entries()) writeFileSync(join(f.keysDir, `odd-${i}.pem`), odd(ecPem()), { mode: 0o600 });
    await waitUntil(() => /"kids":\["[^"]+","[^"]+","[^"]+","[^"]+"\][\s\S]*"kids":\["[^"]+","[^"]+","[^"]+","[^"]+"\]/.test(server.stdout()), 'both workers reload four keys');
    const statuses = await Promise.all(Array.from({ length: 10 }, () => token(server.url)));
    expect(statuses).toEqual(Array(10).fill(200));
    expect(server.stdout()).not.toMatch(/worker\.died|keys\.rejected/);
    expect(server.stderr()).toBe('');
    expect(pidsIn(server.stdout()).size).toBe(2);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  /** Two workers on SQLite, both of which have refused a broken key file dropped into the folder. */
  const twoWorkersRefusingABrokenKey = async () => {
    const f = await fixture('{ kind: sqlite, path: STATE/tokens.db }');
    const server = await startServerProcess(f.configFile, {}, ['--workers', '2']);
    await server.waitForOutput(BOTH_STARTED);
    const broken = join(f.keysDir, 'broken.pem');
    writeFileSync(broken, 'not a key\n');
    await waitUntil(() => count(server.stdout(), 'keys.rejected') === 2, 'both workers refuse the broken key');
    return { server, broken };
  };

  it('tries again a worker that cannot start while another serves, and has it back once the key folder is fixed', async () => {
    const { server, broken } = await twoWorkersRefusingABrokenKey();
    // Refused by both workers, counted once: the sum over workers takes the largest count.
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { connection: 'close' } })).text();
    expect(metrics).toMatch(/^tollgate_reloads_rejected_total\{source="keys"\} 1$/m);
    expect(metrics).toMatch(/^tollgate_reloads_rejected_total\{source="registry"\} 0$/m);

    const [victim] = pidsIn(server.stdout());
    process.kill(victim!, 'SIGKILL');
    const [line] = await server.waitForOutput(/.*"event":"worker.start_failed".*/);
    expect(JSON.parse(line) as unknown).toMatchObject({ reason: `${broken}: is not a PEM private key` });
    // The other worker serves on, with the keys it had.
    expect(await token(server.url)).toBe(200);

    unlinkSync(broken);
    await waitUntil(() => pidsIn(server.stdout()).size === 3, 'a replacement worker starts');
    const statuses = await Promise.all(Array.from({ length: 10 }, () => token(server.url)));
    expect(statuses).toEqual(Array(10).fill(200));
    expect(server.stderr()).toBe('');
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('stops with exit 1 and one line, rather than sitting with nothing listening, when no worker can start', async () => {
    const { server, broken } = await twoWorkersRefusingABrokenKey();

    for (const pid of pidsIn(server.stdout())) process.kill(pid, 'SIGKILL');
    await waitUntil(() => server.proc.exitCode !== null, 'the primary exits');
    expect(server.proc.exitCode).toBe(1);
    expect(server.stderr()).toBe(`tollgate: no worker can start: ${broken}: is not a PEM private key\n`);
  });

  it('refuses a bad --workers value', async () => {
    const f = await fixture('{ kind: memory }');
    const err = await serveFailure(f.configFile, 'lots');
    expect(err?.code).toBe(1);
    expect(err!.stderr).toMatch(/--workers must be/);
  });
});
