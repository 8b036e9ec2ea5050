#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { clientCommand } from './client-command.js';
import { describeFailure } from './failure.js';
import { processIo, type Io } from './io.js';
import { keysCommand } from './keys-command.js';
import { configCommand, hashSecretCommand, serveCommand } from './other-commands.js';
import { tokenCommand } from './token-command.js';
import { UsageError } from './usage.js';

const HELP = `Usage: tollgate <command> [options]

An OAuth 2.0 authorization server for machine-to-machine traffic (client credentials grant).

Commands:
  serve                 run the server
  client add|update|show|rotate-secret|list|disable|enable|remove
                        manage the client registry
  hash-secret           print the argon2id hash of a secret read on stdin
  config check          validate the config, the registry and the keys
  keys list|rotate|prune
                        list, add and retire signing keys
  token revoke          revoke issued tokens, by client or by jti

Options:
  -h, --help            this text
  -v, --version         print the version of tollgate

Run tollgate <command> --help for a command's options. Exit status: 0 success, 1 a usage or
configuration error (one line on stderr), 2 an unexpected failure.`;

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  serve: serveCommand,
  client: clientCommand,
  'hash-secret': hashSecretCommand,
  config: configCommand,
  keys: keysCommand,
  token: tokenCommand,
};

export async function run(argv: string[], io: Io): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined) {
      io.err(HELP);
      return 1;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      io.out(HELP);
      return 0;
    }
    if (command === '--version' || command === '-v') {
      io.out(version());
      return 0;
    }
    const handler = COMMANDS[command];
    if (handler === undefined) throw new UsageError(`unknown command "${command}" (see tollgate --help)`);
    return await handler(args, io);
  } catch (err) {
    const { lines, code } = describeFailure(err, io.env);
    for (const line of lines) io.err(line);
    return code;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const code = await run(process.argv.slice(2), processIo);
process.exitCode = code;
