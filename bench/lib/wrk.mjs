// Load with wrk (https://github.com/wg/wrk), when it is installed: a load generator written in C
// that spends far less CPU per request than autocannon, which matters when it shares two cores
// with the server it measures. One wrk thread, like autocannon's one event loop.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a `wrk` that runs is on the PATH. */
export function wrkAvailable() {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && /wrk/.test(`${r.stdout}${r.stderr}`);
}

/** A Lua string literal for any text. */
const lua = (s) => `"${[...Buffer.from(s, 'utf8')].map((b) => `\\${b}`).join('')}"`;

/** The wrk script that sends `request` (method, headers, body). */
function script(request) {
  const lines = [`wrk.method = ${lua(request.method)}`];
  for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`wrk.headers[${lua(name)}] = ${lua(value)}`);
  if (request.body !== undefined) lines.push(`wrk.body = ${lua(request.body)}`);
  return `${lines.join('\n')}\n`;
}

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** wrk's "1.23ms" as milliseconds. */
function duration(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
}

/** The figures of wrk's report (run with --latency). */
export function parseWrk(out) {
  const requests = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (!requests) throw new Error(`cannot read wrk's report:\n${out}`);
  const percentile = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm').exec(out);
    return m ? duration(m[1]) : undefined;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const answered = Number(requests[1]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const bad = non2xx ? Number(non2xx[1]) : 0;
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    seconds: (Number(requests[2]) * UNIT_MS[requests[3]]) / 1000,
    p50: percentile(50),
    p99: percentile(99),
    ok: answered - bad,
    failed: bad + socketErrors,
    total: answered + socketErrors,
    failures: [bad ? `non-2xx: ${bad}` : '', socketErrors ? socket[0] : ''].filter(Boolean).join(', '),
  };
}

/** Runs wrk against one request shape; resolves its parsed report. */
export async function runWrk(target, request, { connections, seconds }) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-wrk-'));
  try {
    const file = join(dir, 'request.lua');
    writeFileSync(file, script(request));
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '--latency', '-s', file, `${target.url}${request.path}`];
    const out = await new Promise((resolve, reject) => {
      const proc = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d) => (stdout += d));
      proc.stderr.on('data', (d) => (stderr += d));
      proc.on('error', reject);
      proc.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited with ${code}: ${stderr.trim() || stdout.trim()}`))));
    });
    return parseWrk(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
