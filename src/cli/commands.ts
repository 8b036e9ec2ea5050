import { clientCommand } from './client-command.js';
import type { Io } from './io.js';
import { keysCommand } from './keys-command.js';
import { configCommand, hashSecretCommand, serveCommand } from './other-commands.js';
import { tokenCommand } from './token-command.js';

/**
 * One `tollgate` command: a new command is a new row. The top-level help lists the rows in this
 * order; each handler parses its own arguments and prints its own `--help`.
 */
export interface Command {
  name: string;
  /** Shown after the name in the top-level help, e.g. `keys list|rotate|prune`. */
  subcommands: readonly string[];
  /** One line for the top-level help. */
  summary: string;
  handler: (args: string[], io: Io) => Promise<number>;
}

export const COMMANDS: readonly Command[] = [
  { name: 'serve', subcommands: [], summary: 'run the server', handler: serveCommand },
  {
    name: 'client',
    subcommands: ['add', 'update', 'show', 'rotate-secret', 'list', 'disable', 'enable', 'remove'],
    summary: 'manage the client registry',
    handler: clientCommand,
  },
  { name: 'hash-secret', subcommands: [], summary: 'print the argon2id hash of a secret read on stdin', handler: hashSecretCommand },
  { name: 'config', subcommands: ['check'], summary: 'validate the config, the registry and the keys', handler: configCommand },
  { name: 'keys', subcommands: ['list', 'rotate', 'prune', 'export', 'import'], summary: 'list, add, retire, export and import signing keys', handler: keysCommand },
  { name: 'token', subcommands: ['revoke'], summary: 'revoke issued tokens, by client or by jti', handler: tokenCommand },
];

/** Where a command's summary starts; a longer name and its subcommands push it to the next line. */
const SUMMARY_COLUMN = 24;

function commandLines(command: Command): string[] {
  const label = `  ${[command.name, command.subcommands.join('|')].filter((s) => s !== '').join(' ')}`;
  if (label.length < SUMMARY_COLUMN - 1) return [`${label.padEnd(SUMMARY_COLUMN)}${command.summary}`];
  return [label, `${' '.repeat(SUMMARY_COLUMN)}${command.summary}`];
}

/** The text of `tollgate --help`, built from the table. */
export function mainHelp(commands: readonly Command[] = COMMANDS): string {
  return `Usage: tollgate <command> [options]

An OAuth 2.0 authorization server for machine-to-machine traffic (client credentials grant).

Commands:
${commands.flatMap(commandLines).join('\n')}

Options:
  -h, --help            this text
  -v, --version         print the version of tollgate

Run tollgate <command> --help for a command's options. Exit status: 0 success, 1 a usage or
configuration error (one line on stderr), 2 an unexpected failure.`;
}
