import { readFileSync } from 'node:fs';
import { COMMANDS, mainHelp } from './commands.js';
import { describeFailure } from './failure.js';
import type { Io } from './io.js';
import { UsageError } from './usage.js';

/**
 * Runs one `tollgate` command line against an Io and returns its exit status. Everything the
 * command touches of its process (output, stdin, environment, working directory) comes through
 * the Io, so tests run it in-process; a failure becomes one line on stderr and exit 1 or 2.
 */
export async function run(argv: string[], io: Io): Promise<number> {
  const [name, ...args] = argv;
  try {
    if (name === undefined) {
      io.err(mainHelp());
      return 1;
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      io.out(mainHelp());
      return 0;
    }
    if (name === '--version' || name === '-v') {
      io.out(version());
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (command === undefined) throw new UsageError(`unknown command "${name}" (see tollgate --help)`);
    return await command.handler(args, io);
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
