import { describe, expect, it } from 'vitest';
import { removableTimes, type ListedKey } from '../../src/keys/key-retention.js';

const MIN = 60_000;
const key = (kid: string, createdAt: number, use: ListedKey['use']): ListedKey => ({ kid, file: `${kid}.pem`, createdAt, bits: 2048, alg: 'RS256', use });
const times = (keys: ListedKey[]) =>
  removableTimes(keys, { publishBeforeUseMs: 10 * MIN, maxTokenTtlMs: 60 * MIN }).map((k) => [k.kid, k.removableAt]);

describe('removableTimes', () => {
  it('counts from when the next newer non-pending key took over signing, plus the longest token lifetime', () => {
    expect(
      times([
        key('pending', 1000 * MIN, 'pending'),
        key('signing', 500 * MIN, 'signing'),
        key('older', 200 * MIN, 'published'),
        key('oldest', 0, 'published'),
      ]),
    ).toEqual([
      ['pending', undefined],
      ['signing', undefined],
      // "signing" took over at 510 min; the last token of "older" expires 60 min later.
      ['older', 570 * MIN],
      ['oldest', 270 * MIN],
    ]);
  });

  it('never gives a time to the signing key, even when it is the oldest and every other key is pending', () => {
    expect(times([key('b', 2 * MIN, 'pending'), key('a', MIN, 'signing')])).toEqual([
      ['b', undefined],
      ['a', undefined],
    ]);
    expect(times([key('only', 0, 'signing')])).toEqual([['only', undefined]]);
  });
});
