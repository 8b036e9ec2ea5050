import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { afterAll } from 'vitest';
import { API, client, registryYaml } from './builders.js';
import { basic } from './helpers.js';

const running = new Set<ChildProcess>();
// Registered once per test file, at collection (a hook registered inside a test would not run):
// no server outlives the file that started it.
afterAll(() => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** The built CLI; test/global-setup.ts builds it before any test runs. */
export const CLI = resolve(import.meta.dirname, '../dist/cli/tollgate.cjs');

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Sends a signal and waits for the exit; resolves the exit code (or the signal's name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** Resolves once stdout matches, polling for at most `ms`. */
  waitForOutput(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

/**
 * Runs `tollgate serve` as a real process and resolves once it listens (its "server.started"
 * log line names the URL, so the config may use port 0). Killed when the test file ends.
 */
export async function startServerProcess(configFile: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(proc, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const url = await new Promise<string>((resolveUrl, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"event":"server.started","url":"([^"]+)"/.exec(out);
      if (m) resolveUrl(m[1]!);
    });
    void exited.then((code) => reject(new Error(`tollgate serve exited (${code}) before listening: ${err.trim()}`)));
  });
  return {
    proc,
    url,
    stdout: () => out,
    stderr: () => err,
    waitForOutput: async (pattern, ms = 15_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = out.match(pattern);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`no ${pattern} in output within ${ms} ms:\n${out}${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async (signal = 'SIGTERM') => {
      proc.kill(signal);
      return exited;
    },
  };
}

/**
 * A service client ("svc") and a resource server allowed to introspect ("rs"), with the
 * secrets given: the registry most process-level tests need.
 */
export function serviceAndResourceServer(svcSecret: string, rsSecret: string): Promise<string> {
  return registryYaml([
    client({ id: 'svc', secret: svcSecret, audiences: [API] }),
    client({ id: 'rs', secret: rsSecret, audiences: [API], introspect: true }),
  ]);
}

/** A running server as a client library would meet it: form POSTs with HTTP Basic credentials. */
export function httpClient(baseUrl: () => string) {
  const post = (path: string, user: string, pass: string, params: Record<string, string>): Promise<Response> =>
    fetch(`${baseUrl()}${path}`, {
      method: 'POST',
      headers: { authorization: basic(user, pass), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
  return {
    post,
    /** A token for `user`; fails the test if the server does not answer 200. */
    async issue(user: string, pass: string): Promise<string> {
      const res = await post('/oauth2/token', user, pass, { grant_type: 'client_credentials' });
      if (res.status !== 200) throw new Error(`token request answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { access_token: string }).access_token;
    },
    async active(user: string, pass: string, token: string): Promise<boolean> {
      return ((await (await post('/oauth2/introspect', user, pass, { token })).json()) as { active: boolean }).active;
    },
  };
}
