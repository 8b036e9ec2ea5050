import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { tempDir } from './helpers.js';
import { freePort } from './store/redis-helpers.js';

const running = new Set<ChildProcess>();
// No nginx outlives the test file that started it.
afterAll(() => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** The nginx program: on PATH, or where Debian's package puts it. */
export function nginxBinary(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

/**
 * The load balancer's config, as docs/guides/several-instances.md shows it: the instances as
 * one upstream, a failed attempt retried on the next one.
 */
export function nginxConfig(options: { dir: string; listen: number; upstreams: readonly number[] }): string {
  const { dir } = options;
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 512; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};

  upstream tollgate {
    # An instance that fails once is left out for 10 s, then tried again.
${options.upstreams.map((port) => `    server 127.0.0.1:${port} max_fails=1 fail_timeout=10s;`).join('\n')}
    keepalive 16;
  }

  server {
    listen 127.0.0.1:${options.listen};
    location / {
      proxy_pass http://tollgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout 2s;
      proxy_read_timeout 10s;
      # Which instance answered: lets the test tell the instances' shares apart.
      add_header X-Upstream $upstream_addr always;
      # A request that failed on one instance (connection refused or reset, a timeout, a 502, or
      # the 503 a stopping instance answers) is sent to the next. nginx retries a POST only with
      # non_idempotent, and every POST of tollgate is safe to repeat: a token request repeated
      # after a lost answer issues a second token (the first, never seen, just expires);
      # introspection only reads; revoking a token twice is what RFC 7009 allows.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_next_upstream_timeout 10s;
    }
  }
}
`;
}

export interface NginxProcess {
  url: string;
  dir: string;
  stop(): Promise<void>;
  errorLog(): string;
}

/** Runs nginx in the foreground as a child, its pid file, logs and temp files in a folder of its own. */
export async function startNginx(upstreams: readonly number[]): Promise<NginxProcess> {
  const bin = nginxBinary();
  if (bin === undefined) throw new Error('nginx is not installed');
  const dir = tempDir('tollgate-nginx-');
  // Run as root, nginx's workers drop to nobody: they must reach the temp folders.
  chmodSync(dir, 0o755);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { mode: 0o777 });
  const listen = await freePort();
  const configFile = join(dir, 'nginx.conf');
  writeFileSync(configFile, nginxConfig({ dir, listen, upstreams }));
  const check = spawnSync(bin, ['-t', '-q', '-c', configFile, '-p', dir], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t refused the config: ${check.stderr}`);
  const proc = spawn(bin, ['-c', configFile, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(proc, 'exit');
  proc.on('exit', () => running.delete(proc));
  const url = `http://127.0.0.1:${listen}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not answer within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    dir,
    errorLog: () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '') + stderr,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      // SIGQUIT: finish the requests in flight, then exit.
      proc.kill('SIGQUIT');
      await exited;
    },
  };
}
