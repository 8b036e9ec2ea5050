import { spawn } from 'node:child_process';
import { expect, inject } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { run } from '../../src/cli/run.js';
import { CLI } from '../server-process.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Working directory of the command: where `config/tollgate.yaml` is looked for by default. */
  cwd: string;
  /** Added to a bare environment (PATH only), so no TOLLGATE_* of the shell running the tests leaks in. */
  env?: NodeJS.ProcessEnv;
  /** Fed on stdin, which is then closed; without it stdin is closed at once. */
  input?: string;
  /**
   * Runs the command as this user, e.g. so that file permissions apply when the tests run as root.
   * It runs a copy of the CLI that user can read: the checkout may sit where only root may enter.
   */
  user?: { uid: number; gid: number };
}

/** Runs the built `tollgate` as a user would, and collects what they would see. */
export function tollgate(args: readonly string[], options: CliOptions): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const cli = options.user === undefined ? CLI : inject('cliForOtherUsers') || CLI;
    const proc = spawn(process.execPath, [cli, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...options.user,
      // A command that should have failed at once but serves instead must not hang the suite.
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // A command that never reads stdin may exit before the input is written.
    proc.stdin.on('error', () => {});
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
    proc.stdin.end(options.input ?? '');
  });
}

/**
 * Runs `tollgate` in this process through its Io seam, as the binary would run it: the same
 * arguments, working directory, bare environment and stdin, the same exit status and output.
 * For every command that neither serves nor needs its own process or user.
 */
export async function tollgateInProcess(args: readonly string[], options: Omit<CliOptions, 'user'>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (line) => (stdout += `${line}\n`),
    err: (line) => (stderr += `${line}\n`),
    readStdin: async () => options.input ?? '',
    env: { PATH: process.env.PATH, ...options.env },
    cwd: options.cwd,
  };
  const code = await run([...args], io);
  return { code, stdout, stderr };
}

/** The lines of an output, without the final newline. */
export function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/**
 * A user's mistake as the contract wants it shown: exit 1, nothing on stdout, exactly one line
 * on stderr that starts with `tollgate:`, and no stack trace.
 */
export function expectUserError(run: CliRun, message?: RegExp): void {
  expect(run.stdout).toBe('');
  expect(lines(run.stderr)).toHaveLength(1);
  expect(run.stderr).toMatch(/^tollgate: \S/);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  if (message !== undefined) expect(run.stderr).toMatch(message);
  expect(run.code).toBe(1);
}
