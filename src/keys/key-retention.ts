import type { KeyFileInfo, KeyUse } from './disk-key-set.js';

/** A key as DiskKeySet.list() reports it. */
export type ListedKey = KeyFileInfo & { use: KeyUse };

export interface RetentionOptions {
  /** The longest lifetime a token can be given now (tokens.ttl, or a client's token_ttl), in ms. */
  maxTokenTtlMs: number;
}

/**
 * When each key can no longer have a live token, so that `keys prune` may delete it. `keys` is
 * DiskKeySet.list(): newest first.
 *
 * A key that is neither signing nor pending stopped signing when the next newer key that is
 * signing or published (its successor) started signing, at the successor's signs-from time; the
 * last token it signed then expires at most maxTokenTtlMs later. The signing key and pending keys get no time:
 * they are never removable.
 */
export function removableTimes(keys: readonly ListedKey[], options: RetentionOptions): (ListedKey & { removableAt: number | undefined })[] {
  let successor: ListedKey | undefined;
  return keys.map((key) => {
    const removableAt =
      key.use === 'published' && successor !== undefined ? successor.signsFrom + options.maxTokenTtlMs : undefined;
    if (key.use !== 'pending') successor = key;
    return { ...key, removableAt };
  });
}
