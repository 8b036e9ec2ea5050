import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, writeFixture } from '../helpers.js';
import { CLI, startServerProcess } from '../server-process.js';

// The entry point is CommonJS (it must run before libuv's pool exists), built by test/global-setup.ts.
const { threadPoolSize } = createRequire(import.meta.url)(resolve(import.meta.dirname, '../../dist/cli/thread-pool.cjs')) as {
  threadPoolSize: (cores: number) => number;
};

const fixture = () =>
  writeFixture({
    config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: sqlite, path: ${join(tempDir(), 'tokens.db')} }
log: { level: info }
`,
    clients: 'clients: []\n',
  });

const startedLine = (stdout: string) =>
  JSON.parse(stdout.split('\n').find((l) => l.includes('"server.started"'))!) as { thread_pool: number };

describe("libuv's thread pool", () => {
  it('gets one thread per core, at least 2 and at most libuv default of 4', () => {
    expect([1, 2, 3, 4, 8, 64].map(threadPoolSize)).toEqual([2, 2, 3, 4, 4, 4]);
  });

  it('is sized by the tollgate command before the server starts, and reported when it listens', async () => {
    const server = await startServerProcess(fixture().configFile);
    expect(startedLine(server.stdout()).thread_pool).toBe(threadPoolSize(availableParallelism()));
    expect(await server.stop()).toBe(0);
  });

  // The pool's threads are the process's own: counted in /proc, beside a server given libuv's default.
  it.skipIf(process.platform !== 'linux')('really has that many threads, not only the setting', async () => {
    const sized = await startServerProcess(fixture().configFile);
    const libuvDefault = await startServerProcess(fixture().configFile, { UV_THREADPOOL_SIZE: '4' });
    const threads = (pid: number) => readdirSync(`/proc/${pid}/task`).length;
    expect(threads(sized.proc.pid!) - threads(libuvDefault.proc.pid!)).toBe(threadPoolSize(availableParallelism()) - 4);
    expect(await sized.stop()).toBe(0);
    expect(await libuvDefault.stop()).toBe(0);
  });

  it("keeps the operator's UV_THREADPOOL_SIZE, and reports the size libuv makes of it", async () => {
    for (const [value, size] of [['3', 3], ['0', 1], ['many', 1]] as const) {
      const server = await startServerProcess(fixture().configFile, { UV_THREADPOOL_SIZE: value });
      expect(startedLine(server.stdout()).thread_pool, value).toBe(size);
      expect(await server.stop()).toBe(0);
    }
  });

  it('is what the installed command runs: package.json bin points at the CommonJS entry', () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(resolve(import.meta.dirname, '../..', pkg.bin.tollgate!)).toBe(CLI);
    expect(readFileSync(CLI, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });
});
