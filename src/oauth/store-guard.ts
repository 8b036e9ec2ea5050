import { TemporarilyUnavailable } from './errors.js';

/**
 * Runs a token-store operation; a store that fails becomes 503 temporarily_unavailable with
 * Retry-After, never a token that was not recorded nor an answer that could be stale.
 */
export async function guardStore<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new TemporarilyUnavailable('the token store is unavailable; retry later', 5, `${what}: ${(err as Error).message}`);
  }
}
