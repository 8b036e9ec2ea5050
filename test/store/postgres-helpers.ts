import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { inject } from 'vitest';
import { freePort, requireOrSkip } from './redis-helpers.js';

/** This run's own database (test/global-setup.ts creates it and drops it at the end), or ''. */
export const POSTGRES_URL = inject('postgresUrl');

/** Whether the tests that need the local PostgreSQL can run: fails in CI when it is missing. */
export function requirePostgres(): boolean {
  return requireOrSkip(POSTGRES_URL !== '', 'PostgreSQL at 127.0.0.1:5432 (or TEST_POSTGRES_URL)');
}

/** A schema name of the test's own inside the run's database: a fresh, empty store. */
export function testSchema(): string {
  return `t_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

/** A one-connection client for a test's own look at a database. */
export function plainSql(url = POSTGRES_URL, schema?: string): postgres.Sql {
  return postgres(url, {
    max: 1,
    connect_timeout: 3,
    onnotice: () => {},
    fetch_types: false,
    ...(schema === undefined ? {} : { connection: { search_path: schema } }),
  });
}

/** The folder of PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup), when installed. */
export function postgresBin(): string | undefined {
  for (const v of ['17', '16', '15']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

/** Whether this machine can start servers of its own: the programs, and root to run them as postgres. */
export function canRunOwnServers(): boolean {
  return postgresBin() !== undefined && process.getuid?.() === 0 && spawnSync('id', ['postgres'], { stdio: 'ignore' }).status === 0;
}

function asPostgres(args: string[], options: { input?: string } = {}): string {
  const run = spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8', ...options });
  if (run.status !== 0) throw new Error(`${args[0]} failed (${run.status}): ${run.stderr}${run.stdout}`);
  return run.stdout;
}

/** A temporary folder the postgres user owns. */
export function postgresTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, gid);
  return dir;
}

/** A PostgreSQL server of a test's own, on a loopback port, in a temporary folder. */
export interface OwnServer {
  readonly port: number;
  readonly dataDir: string;
  /** The postgres process, while it runs. */
  proc: ChildProcess | undefined;
  readonly log: string;
}

/** Makes a cluster with trust auth for loopback and replication, ready to stream to standbys. */
export async function initPrimary(root: string, settings: Record<string, string> = {}): Promise<OwnServer> {
  const bin = postgresBin()!;
  const dataDir = join(root, 'primary');
  asPostgres([join(bin, 'initdb'), '-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  appendConf(dataDir, {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${root}'`,
    wal_level: 'replica',
    max_wal_senders: '5',
    fsync: 'on',
    shared_buffers: "'16MB'",
    ...settings,
  });
  writeFileSync(join(dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\nlocal all all trust\n');
  return { port, dataDir, proc: undefined, log: join(root, 'primary.log') };
}

/** A streaming standby of `primary` (pg_basebackup -R), named so synchronous_standby_names can wait for it. */
export async function initStandby(root: string, primary: OwnServer, name: string): Promise<OwnServer> {
  const bin = postgresBin()!;
  const dataDir = join(root, name);
  asPostgres([join(bin, 'pg_basebackup'), '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '--no-sync']);
  const port = await freePort();
  appendConf(dataDir, { port: String(port), hot_standby: 'on' });
  // pg_basebackup -R wrote primary_conninfo to postgresql.auto.conf, which wins over
  // postgresql.conf: the name synchronous_standby_names waits for goes there too.
  const auto = join(dataDir, 'postgresql.auto.conf');
  writeFileSync(auto, `${readFileSync(auto, 'utf8')}\nprimary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=${name}'\n`);
  return { port, dataDir, proc: undefined, log: join(root, `${name}.log`) };
}

function appendConf(dataDir: string, settings: Record<string, string>): void {
  const file = join(dataDir, 'postgresql.conf');
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  writeFileSync(file, `${readFileSync(file, 'utf8')}\n${lines.join('\n')}\n`);
}

/** Sets `settings` in a server's postgresql.conf (applied at its next start or reload). */
export function configure(server: OwnServer, settings: Record<string, string>): void {
  appendConf(server.dataDir, settings);
}

/** Starts the server (the postgres binary itself, so the test holds its pid) and waits until it accepts connections. */
export async function startServer(server: OwnServer): Promise<void> {
  const bin = postgresBin()!;
  const proc = spawn('runuser', ['-u', 'postgres', '--', join(bin, 'postgres'), '-D', server.dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  server.proc = proc;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres on port ${server.port} exited with ${proc.exitCode}: ${stderr}`);
    if (spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(server.port), '-q']).status === 0) return;
    if (Date.now() > deadline) throw new Error(`postgres on port ${server.port} did not accept connections within 30 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The pid of the postgres server process itself: runuser forks it as its child, and SIGKILL to
 * runuser would leave the server running.
 */
function serverPid(server: OwnServer): number | undefined {
  try {
    return Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** Kills the server: SIGKILL is a crash (nothing flushed that was not already), SIGTERM... a smart stop. */
export async function stopServer(server: OwnServer, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = serverPid(server);
  if (pid !== undefined) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
    if (signal === 'SIGKILL') {
      // The backends of a killed postmaster exit on their own once they notice; end them now so
      // nothing answers on the port any more.
      spawnSync('pkill', ['-KILL', '-P', String(pid)]);
    }
  }
  const proc = server.proc;
  if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGCONT');
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    if (pid === undefined) proc.kill(signal);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
  }
  server.proc = undefined;
}

/** Sends a signal to the server and every process it forked (SIGSTOP: a hung database; SIGCONT: back). */
export function signalServer(server: OwnServer, signal: NodeJS.Signals): void {
  const pid = serverPid(server);
  if (pid === undefined) return;
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  for (const p of [pid, ...children]) {
    try {
      process.kill(p, signal);
    } catch {
      // Gone meanwhile.
    }
  }
  // runuser stops itself when its child stops, as a shell's job control would: wake it too, or
  // it would never reap the server and outlive the test.
  if (signal === 'SIGCONT') server.proc?.kill('SIGCONT');
}

/** Makes the server read its configuration again (SIGHUP to its postmaster). */
export function reload(server: OwnServer): void {
  const pid = serverPid(server);
  if (pid !== undefined) process.kill(pid, 'SIGHUP');
}

/** Promotes a standby (pg_ctl promote) and waits until it accepts writes. */
export async function promote(server: OwnServer): Promise<void> {
  asPostgres([join(postgresBin()!, 'pg_ctl'), 'promote', '-D', server.dataDir, '-w', '-t', '30']);
}

/** Removes a temporary folder of servers, once they are stopped. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export { freePort };
