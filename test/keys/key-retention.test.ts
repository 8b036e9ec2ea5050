import { describe, expect, it } from 'vitest';
import { removableTimes, type ListedKey } from '../../src/keys/key-retention.js';

const MIN = 60_000;
/** A key made at createdAt that signs from 10 min later, as keys rotate writes it. */
const key = (kid: string, createdAt: number, use: ListedKey['use']): ListedKey => ({
  kid,
  file: `${kid}.pem`,
  createdAt,
  signsFrom: createdAt + 10 * MIN,
  timesFrom: 'file',
  bits: 2048,
  alg: 'RS256',
  use,
});
const times = (keys: ListedKey[]) => removableTimes(keys, { maxTokenTtlMs: 60 * MIN }).map((k) => [k.kid, k.removableAt]);

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

  it("counts from the successor's own signs-from time, not from its creation", () => {
    // An imported key made long ago that signs from 300 min (`keys import --signs-from`).
    const imported: ListedKey = { ...key('imported', 0, 'signing'), signsFrom: 300 * MIN };
    expect(times([imported, key('old', 100 * MIN, 'published')])).toEqual([
      ['imported', undefined],
      ['old', 360 * MIN],
    ]);
  });
});
