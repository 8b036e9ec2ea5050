import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, startServerProcess, type ServerProcess } from '../server-process.js';
import { docFiles, read, ROOT, shellBlocks, type ShellBlock } from './markdown.js';

// Runs every sh/bash/shell block of README.md and the docs as a reader would: in a fresh clone
// (config/ copied, node_modules linked) with `npm start` running on the repository's config, so
// the examples cannot rot. The blocks of one page run in order in one bash (`set -euo pipefail`),
// sharing variables and files as a reader's terminal would; each page gets its own folder and
// server. Blocks marked `<!-- not-run: reason -->` (Docker, Kubernetes, a long-running command,
// another server set-up) are not collected, and the first test lists them with their reasons.
//
// What the harness changes, so that a block's exit status means something:
// - the server listens on a free port rather than 8080, and 127.0.0.1:8080 in a block is
//   rewritten to it (the machine may run something on 8080);
// - `curl` runs with --fail-with-body, so an HTTP error answer fails the block, with a time limit
//   and without its progress meter;
// - `npx tollgate` and `tollgate` run the built CLI (dist/), with no npm in between.
// - `sleep N` waits twice as long, for a loaded machine to pick up a registry change.

const PAGES = docFiles().map((file) => ({ file, ...shellBlocks(file, read(file)) }));
const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

function which(command: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim();
  if (found === '') throw new Error(`${command} is not installed: the documentation blocks need it`);
  return found;
}

function executable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

/** A folder laid out like a clone after `npm install`, with the config on a port of its own. */
function clone(port: number): { dir: string; bin: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-docs-'));
  folders.push(dir);
  mkdirSync(join(dir, 'config'));
  const config = readFileSync(join(ROOT, 'config/tollgate.yaml'), 'utf8')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
    .replace(/^(\s+port:) 8080\b/m, `$1 ${port}`);
  if (!config.includes(`port: ${port}`)) throw new Error('config/tollgate.yaml no longer has "port: 8080" under listen: update this harness');
  writeFileSync(join(dir, 'config/tollgate.yaml'), config);
  copyFileSync(join(ROOT, 'config/clients.yaml'), join(dir, 'config/clients.yaml'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const bin = join(dir, '.bin');
  mkdirSync(bin);
  const tollgate = `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`;
  executable(join(bin, 'tollgate'), tollgate);
  executable(
    join(bin, 'npx'),
    `#!/bin/sh\nif [ "$1" = tollgate ]; then shift; exec "${process.execPath}" "${CLI}" "$@"; fi\necho "npx $1: documentation blocks may only run npx tollgate" >&2\nexit 127\n`,
  );
  executable(join(bin, 'curl'), `#!/bin/sh\nexec "${which('curl')}" --fail-with-body --no-progress-meter --max-time 10 "$@"\n`);
  executable(join(bin, 'node'), `#!/bin/sh\nexec "${process.execPath}" "$@"\n`);
  // A block sleeps to let the server pick up a change (about once a second); on a loaded machine
  // that takes longer, so whole seconds are doubled here.
  executable(join(bin, 'sleep'), `#!/bin/sh\ncase "$1" in ''|*[!0-9]*) exec "${which('sleep')}" "$@";; esac\nexec "${which('sleep')}" $(($1 * 2))\n`);
  return { dir, bin };
}

/**
 * A clone with its server running. The port is free when chosen but may be taken before the
 * server binds it (other tests run beside this one): then the next free port is tried.
 */
async function cloneAndServe(): Promise<{ port: number; dir: string; bin: string; server: ServerProcess }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const { dir, bin } = clone(port);
    try {
      return { port, dir, bin, server: await startServerProcess(join(dir, 'config/tollgate.yaml')) };
    } catch (err) {
      if (attempt === 3 || !/EADDRINUSE|address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

interface Outcome {
  code: number | null;
  output: string;
  /** The index of the block that was running when the script ended. */
  last: number;
}

/** Runs the blocks in one bash, each announced in a file so a failure names its block. */
function runBlocks(blocks: ShellBlock[], dir: string, bin: string, port: number): Promise<Outcome> {
  const progress = join(dir, '.block');
  const script = [
    'set -euo pipefail',
    ...blocks.flatMap((b, i) => [`echo ${i} > ${JSON.stringify(progress)}`, b.code.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)]),
    `echo done > ${JSON.stringify(progress)}`,
  ].join('\n');
  const env: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, HOME: dir, LANG: 'C.UTF-8' };
  return new Promise((resolveOutcome) => {
    const proc = spawn('bash', ['-c', script], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // A block that hangs (a server started in the foreground) is stopped, with all it started.
    const timer = setTimeout(() => process.kill(-proc.pid!, 'SIGKILL'), 60_000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      let last = -1;
      try {
        const text = readFileSync(progress, 'utf8').trim();
        last = text === 'done' ? blocks.length : Number(text);
      } catch {
        // The script ended before its first block.
      }
      resolveOutcome({ code, output, last });
    });
  });
}

describe('shell blocks in README.md and docs/', () => {
  it('collects the blocks to run, and lists those left out with the reason', () => {
    const run = PAGES.reduce((n, p) => n + p.run.length, 0);
    const excluded = PAGES.flatMap((p) => p.excluded);
    const lines = excluded.map((e) => `  ${e.where}: ${e.reason}`);
    console.info(`running ${run} shell blocks; ${excluded.length} left out:\n${lines.join('\n')}`);
    expect(run).toBeGreaterThanOrEqual(10);
    expect(PAGES.find((p) => p.file === 'README.md')!.run.length).toBeGreaterThanOrEqual(4);
  });

  for (const page of PAGES.filter((p) => p.run.length > 0)) {
    // Pages share nothing (each has its folder, port and server), so they run side by side:
    // most of a page's time is spent waiting for a reload or a key.
    it.concurrent(`${page.file}: its ${page.run.length} shell block(s) exit 0 against a running server`, async () => {
      const { port, dir, bin, server } = await cloneAndServe();
      try {
        const outcome = await runBlocks(page.run, dir, bin, port);
        if (outcome.code !== 0 || outcome.last !== page.run.length) {
          const block = page.run[Math.max(0, Math.min(outcome.last, page.run.length - 1))]!;
          const serverLog = server.stdout().split('\n').filter((l) => /"level":"(warn|error|fatal)"/.test(l)).slice(-5).join('\n');
          expect.fail(
            `the block at ${block.where} failed (exit ${outcome.code}):\n${block.code}\n--- its output (all blocks of the page) ---\n${outcome.output.slice(-3000)}` +
              `\n--- server warnings ---\n${serverLog}`,
          );
        }
      } finally {
        await server.stop();
      }
    }, 90_000);
  }
});

describe('the harness', () => {
  it('stops at the first block that fails, names it, and fails on an HTTP error or an unset variable', async () => {
    // A server that answers every request 401, as tollgate does a wrong secret.
    const http = createHttpServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}'));
    await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
    const { port } = http.address() as { port: number };
    const { dir, bin } = clone(port);
    const blocks = (code: string): ShellBlock[] => [
      { where: 'page.md:3', code: 'A=1' },
      { where: 'page.md:9', code },
      { where: 'page.md:15', code: 'echo never' },
    ];
    const refused = await runBlocks(blocks('curl -s http://127.0.0.1:8080/oauth2/token'), dir, bin, port).finally(() => http.close());
    expect(refused.code).toBe(22);
    expect(refused.last).toBe(1);
    expect(refused.output).toContain('{"error":"invalid_client"}');
    expect(refused.output).not.toContain('never');

    const unset = await runBlocks(blocks('echo "$NOT_SET"'), dir, bin, port);
    expect(unset.last).toBe(1);
    expect(unset.output).toMatch(/NOT_SET: unbound variable/);

    const passes = await runBlocks(blocks('echo "$A"'), dir, bin, port);
    expect(passes).toMatchObject({ code: 0, last: 3 });
  });
});

describe('shellBlocks', () => {
  it('takes sh, bash and shell fences, indented ones too, and leaves out a marked block with its reason', () => {
    const text = [
      'text',
      '```sh',
      'echo one',
      '```',
      '1. step',
      '   ```bash',
      '   echo two',
      '   ```',
      '<!-- not-run: needs docker -->',
      '```shell',
      'docker run x',
      '```',
      '```yaml',
      'a: 1',
      '```',
    ].join('\n');
    const blocks = shellBlocks('page.md', text);
    expect(blocks.run).toEqual([
      { where: 'page.md:2', code: 'echo one' },
      { where: 'page.md:6', code: 'echo two' },
    ]);
    expect(blocks.excluded).toEqual([{ where: 'page.md:10', reason: 'needs docker' }]);
  });

  it('refuses a marker without a reason, a marker on anything but a shell block, and an unclosed fence', () => {
    expect(() => shellBlocks('p.md', '<!-- not-run: -->\n```sh\nx\n```')).toThrow(/p.md:1: a not-run marker must say why/);
    expect(() => shellBlocks('p.md', '<!-- not-run: x -->\n```yaml\nx\n```')).toThrow(/p.md:1: .*followed by a sh, bash or shell block/);
    expect(() => shellBlocks('p.md', '<!-- not-run: x -->\nprose\n```sh\nx\n```')).toThrow(/p.md:1/);
    expect(() => shellBlocks('p.md', 'a\n```sh\nx\n')).toThrow(/p.md:2: the code block is never closed/);
  });
});
