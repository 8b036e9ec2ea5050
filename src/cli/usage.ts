import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake on the command line or in what the user asked for: one line on stderr, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** node:util parseArgs, with its errors turned into one-line UsageErrors. */
export function parseCommand<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    // "Unknown option '--x'. To specify a positional…": the first sentence is the useful one.
    // Some messages run on over several lines ("… is ambiguous.\nDid you forget…"): one line only.
    const first = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    // A value that starts with "-" (a jti can) reads as an option unless it is attached.
    const ambiguous = /^Option '(--[a-z-]+)' argument is ambiguous$/.exec(first);
    throw new UsageError(ambiguous ? `${first}: a value that starts with "-" must be written ${ambiguous[1]}=VALUE` : first);
  }
}

/** The config file: --config, else $TOLLGATE_CONFIG, else config/tollgate.yaml here. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.TOLLGATE_CONFIG ?? 'config/tollgate.yaml';
}

/** Exactly n positional arguments, named for the error message. */
export function positionals(values: string[], names: string[], usage: string): string[] {
  if (values.length !== names.length) {
    const what = values.length < names.length ? `missing ${names[values.length]}` : `unexpected argument ${JSON.stringify(values[names.length])}`;
    throw new UsageError(`${what} (usage: ${usage})`);
  }
  return values;
}
