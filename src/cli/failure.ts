import { ConfigError } from '../shared/config-error.js';
import { UsageError } from './usage.js';

/**
 * What a command that failed says on stderr, and its exit status: 1 with one line for a usage or
 * configuration error, 2 for anything unexpected (with the stack when TOLLGATE_DEBUG is set).
 */
export function describeFailure(err: unknown, env: NodeJS.ProcessEnv): { lines: string[]; code: 1 | 2 } {
  if (err instanceof UsageError) return { lines: [`tollgate: ${err.message}`], code: 1 };
  if (err instanceof ConfigError) {
    const [first] = err.problems;
    const more = err.problems.length > 1 ? ` (and ${err.problems.length - 1} more: run tollgate config check)` : '';
    return { lines: [`tollgate: ${err.message.split('\n')[0]}${first ? more : ''}`], code: 1 };
  }
  const lines = [`tollgate: unexpected error: ${(err as Error | undefined)?.message ?? String(err)}`];
  if (env.TOLLGATE_DEBUG) lines.push(String((err as Error | undefined)?.stack));
  return { lines, code: 2 };
}
