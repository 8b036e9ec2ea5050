// Child processes of the benchmark: start a server, wait until it answers, read its RSS and CPU
// time, and make sure none outlives the run (normal end, failure or Ctrl-C).

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set();
const OUTPUT_LIMIT = 16_384;

/** A free loopback port (for servers that must know their own URL before they start). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `node …args` and resolves once it is ready: when `url` is given, once GET url+healthPath
 * answers 200; otherwise once its stdout prints a JSON line with a "url" field.
 */
export async function startServer({ name, args, env, url, healthPath = '/', timeoutMs = 30_000 }) {
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let output = '';
  const keep = (d) => {
    output = (output + d.toString()).slice(-OUTPUT_LIMIT);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  exited.then(() => children.delete(proc));

  const ready = url !== undefined ? pollHealth(`${url}${healthPath}`).then(() => url) : printedUrl(proc);
  const failed = exited.then((code) => {
    throw new Error(`${name} exited (${code}) before it was ready:\n${indent(output.trim())}`);
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} was not ready after ${timeoutMs / 1000} s:\n${indent(output.trim())}`)), timeoutMs);
  });
  try {
    const readyUrl = await Promise.race([ready, failed, timeout]);
    return { name, proc, pid: proc.pid, url: readyUrl, output: () => output, exited };
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function printedUrl(proc) {
  return new Promise((resolve) => {
    let buffered = '';
    const onData = (d) => {
      buffered += d.toString();
      const m = /"url":"([^"]+)"/.exec(buffered);
      if (m) {
        proc.stdout.off('data', onData);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
  });
}

async function pollHealth(url) {
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const indent = (s) => s.split('\n').map((l) => `    ${l}`).join('\n');

/**
 * The resident set size in MiB of a process and its children (the workers of `serve --workers`),
 * or undefined once it is gone.
 */
export function rssMiB(pid) {
  const kib = overTree(pid, rssKiB);
  return kib === undefined ? undefined : kib / 1024;
}

/**
 * `read(pid)` summed over a process and the processes it started that still run, or undefined
 * once the process is gone.
 */
function overTree(pid, read) {
  const own = read(pid);
  if (own === undefined) return undefined;
  const children = readOr(`/proc/${pid}/task/${pid}/children`, '').split(' ').filter(Boolean).map(Number);
  return children.reduce((sum, child) => sum + (read(child) ?? 0), own);
}

const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

/**
 * The CPU time in ms (user and system, every thread) a process and its children have used so
 * far, or undefined once it is gone. The difference over a run, per request, is what a request
 * costs the server.
 */
export function cpuMs(pid) {
  const ticks = overTree(pid, cpuTicks);
  return ticks === undefined ? undefined : ticks * TICK_MS;
}

function cpuTicks(pid) {
  const stat = readOr(`/proc/${pid}/stat`, '');
  if (stat === '') return undefined;
  // proc(5): utime and stime are fields 14 and 15; the command name before them may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readOr(`/proc/${pid}/status`, ''));
  return m ? Number(m[1]) : undefined;
}

function readOr(file, fallback) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** SIGTERM every child still running, then SIGKILL whatever is left after `graceMs`. */
export async function stopAll(graceMs = 3000) {
  const live = [...children].filter((p) => p.exitCode === null && p.signalCode === null);
  await Promise.all(
    live.map(
      (p) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => {
            p.kill('SIGKILL');
            resolve();
          }, graceMs);
          p.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

/** The last resort, for process.on('exit'): SIGKILL synchronously. */
export function killAllNow() {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

/** Adds a process started elsewhere (a redis-server) to those stopped at the end of the run. */
export function track(proc) {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}
