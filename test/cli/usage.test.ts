import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { tempDir } from '../helpers.js';
import { expectUserError, tollgate, tollgateInProcess } from './run-cli.js';

// An empty folder: no config/tollgate.yaml, so help must not need one.
const cwd = tempDir();

// The commands run in-process; these few run the built binary, to show it wires the same run.
describe.concurrent('the tollgate binary', () => {
  it('tollgate --help prints the usage on stdout and exits 0', async () => {
    const run = await tollgate(['--help'], { cwd });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(`${MAIN_HELP}\n`);
    expect(run.code).toBe(0);
  });

  it('a failing command exits 1 with one line on stderr', async () => {
    expectUserError(await tollgate(['client', 'list'], { cwd }), /config\/tollgate\.yaml: file not found/);
  });
});

describe.concurrent('tollgate --help', () => {
  it.each([['--help'], ['-h'], ['help']])('tollgate %s prints the usage and every command on stdout', async (flag) => {
    const run = await tollgateInProcess([flag], { cwd });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^Usage: tollgate <command>/);
    for (const command of ['serve', 'client add', 'hash-secret', 'config check', 'keys list']) {
      expect(run.stdout).toContain(command.split(' ')[0]);
    }
    expect(run.code).toBe(0);
  });

  it.each([
    [['serve', '--help'], 'tollgate serve'],
    [['client', '--help'], 'tollgate client'],
    [['client', 'add', '--help'], 'tollgate client'],
    [['client', 'rotate-secret', '--help'], 'tollgate client'],
    [['client', 'show', '--help'], 'tollgate client'],
    [['client', 'update', '--help'], 'tollgate client'],
    [['client', 'list', '-h'], 'tollgate client'],
    [['client', 'disable', '--help'], 'tollgate client'],
    [['client', 'enable', '--help'], 'tollgate client'],
    [['client', 'remove', '--help'], 'tollgate client'],
    [['hash-secret', '--help'], 'tollgate hash-secret'],
    [['config', '--help'], 'tollgate config check'],
    [['config', 'check', '--help'], 'tollgate config check'],
    [['keys', '--help'], 'tollgate keys list'],
    [['keys', 'list', '--help'], 'tollgate keys list'],
    [['token', '--help'], 'tollgate token revoke'],
    [['token', 'revoke', '--help'], 'tollgate token revoke'],
  ])('tollgate %j prints its usage on stdout and exits 0', async (args, usage) => {
    const run = await tollgateInProcess(args, { cwd });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(new RegExp(`^Usage: ${usage}\\b`));
    expect(run.stdout).toContain('--help');
    expect(run.code).toBe(0);
  });

  // --version worked but the help did not mention it.
  it('lists --version, which prints the package version alone on stdout', async () => {
    const help = await tollgateInProcess(['--help'], { cwd });
    expect(help.stdout).toMatch(/^\s+-v, --version\s+\S/m);
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const run = await tollgateInProcess([flag], { cwd });
      expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  // The top-level help is built from the table of commands: pinned so the table keeps it as it was.
  it('the top-level help is the same text, byte for byte', async () => {
    expect((await tollgateInProcess(['--help'], { cwd })).stdout).toBe(`${MAIN_HELP}\n`);
  });

  // The table names each command's subcommands for the help; each must be one the command knows.
  it.each(COMMANDS.flatMap((c) => (c.subcommands.length === 0 ? [c.name] : c.subcommands.map((sub) => `${c.name} ${sub}`))))(
    'tollgate %s --help, from the table of commands, prints a usage and exits 0',
    async (command) => {
      const run = await tollgateInProcess([...command.split(' '), '--help'], { cwd });
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(new RegExp(`^Usage: tollgate ${command.split(' ')[0]}\\b`));
      expect(run.code).toBe(0);
    },
  );

  it('documents the options of client add', async () => {
    const { stdout } = await tollgateInProcess(['client', 'add', '--help'], { cwd });
    for (const option of ['--scope', '--audience', '--ttl', '--auth-method', '--config']) expect(stdout).toContain(option);
  });
});

describe.concurrent('usage errors', () => {
  it('no command: the usage on stderr, nothing on stdout, exit 1', async () => {
    const run = await tollgateInProcess([], { cwd });
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Usage: tollgate <command>/);
    expect(run.code).toBe(1);
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--frobnicate'], /unknown command "--frobnicate"/],
    [['client'], /missing command/],
    [['client', 'rename', 'x'], /unknown command "client rename"/],
    [['config'], /missing command/],
    [['config', 'fix'], /unknown command "config fix"/],
    [['keys', 'delete'], /unknown command "keys delete"/],
    [['client', 'add', 'svc', '--bogus'], /unknown option '--bogus'/i],
    [['client', 'add', 'svc', '--ttl'], /--ttl/],
    [['client', 'list', '--bogus'], /unknown option '--bogus'/i],
    [['client', 'disable', 'svc', '--force'], /unknown option '--force'/i],
    [['serve', '--port', '9000'], /unknown option '--port'/i],
    [['serve', 'now'], /unexpected argument "now"/],
    [['hash-secret', '--bogus'], /unknown option '--bogus'/i],
    [['config', 'check', '--strict'], /unknown option '--strict'/i],
    [['keys', 'list', '--bogus'], /unknown option '--bogus'/i],
    [['client', 'add'], /missing ID/],
    [['client', 'rotate-secret'], /missing ID/],
    [['client', 'disable'], /missing ID/],
    [['client', 'enable'], /missing ID/],
    [['client', 'remove'], /missing ID/],
    [['client', 'remove', 'a', 'b'], /unexpected argument "b"/],
    [['client', 'show'], /missing ID/],
    [['client', 'update'], /missing ID/],
    [['client', 'update', 'svc', '--bogus'], /unknown option '--bogus'/i],
    [['client', 'enable', 'svc', '--registry-only'], /unknown option '--registry-only'/i],
    // A jti may start with "-": the message says how to pass one.
    [['token', 'revoke', '--jti', '-AbC123'], /Option '--jti' argument is ambiguous: a value that starts with "-" must be written --jti=VALUE/],
  ])('tollgate %j: exit 1 with one line on stderr', async (args, message) => {
    expectUserError(await tollgateInProcess(args, { cwd }), message);
  });

  it('a command that needs the config looks for config/tollgate.yaml under the current directory', async () => {
    expectUserError(await tollgateInProcess(['client', 'list'], { cwd }), /config\/tollgate\.yaml: file not found/);
  });

  it('a --config that does not exist is named', async () => {
    expectUserError(await tollgateInProcess(['keys', 'list', '--config', 'nowhere.yaml'], { cwd }), /nowhere\.yaml: file not found/);
  });
});

const MAIN_HELP = `Usage: tollgate <command> [options]

An OAuth 2.0 authorization server for machine-to-machine traffic (client credentials grant).

Commands:
  serve                 run the server
  client add|update|show|rotate-secret|list|disable|enable|remove
                        manage the client registry
  hash-secret           print the argon2id hash of a secret read on stdin
  config check          validate the config, the registry and the keys
  keys list|rotate|prune|export|import
                        list, add, retire, export and import signing keys
  token revoke          revoke issued tokens, by client or by jti

Options:
  -h, --help            this text
  -v, --version         print the version of tollgate

Run tollgate <command> --help for a command's options. Exit status: 0 success, 1 a usage or
configuration error (one line on stderr), 2 an unexpected failure.`;
