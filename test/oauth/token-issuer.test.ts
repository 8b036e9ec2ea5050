import { describe, expect, it } from 'vitest';
import { newJti } from '../../src/oauth/token-issuer.js';
import { clientTag, jtiTag } from '../../src/store/token-slot.js';

describe('newJti', () => {
  it("is 36 base64url characters: time, the client's tag, then 144 random bits", () => {
    const at = Date.UTC(2026, 10, 22, 3, 0, 0);
    // 2,000 jtis draw on the random pool (256 jtis a fill) several times over.
    const jtis = Array.from({ length: 2000 }, () => newJti(at, 'svc-a'));
    // Never a leading "-", which a command line would read as an option.
    for (const jti of jtis) expect(jti).toMatch(/^[A-Za-z0-9]{8}[A-Za-z0-9_-]{28}$/);
    // Same millisecond, same 8-character time prefix; the random parts never repeat.
    expect(new Set(jtis.map((j) => j.slice(0, 8))).size).toBe(1);
    expect(new Set(jtis.map((j) => j.slice(12))).size).toBe(2000);
    // 24 base64url characters decode to 18 bytes.
    expect(Buffer.from(jtis[0]!.slice(12), 'base64url')).toHaveLength(18);
  });

  it('carries the tag of its client, whatever characters the client_id holds', () => {
    const at = Date.UTC(2026, 10, 22, 3, 0, 0);
    for (const clientId of ['svc-a', 'svc-b', '{odd}:client id~', 'x'.repeat(200)]) {
      const jti = newJti(at, clientId);
      expect(jtiTag(jti)).toBe(clientTag(clientId));
      expect(clientTag(clientId)).toMatch(/^[A-Za-z0-9_-]{4}$/);
    }
    expect(clientTag('svc-a')).not.toBe(clientTag('svc-b'));
    // A jti issued before tags (32 characters) or by anyone else carries none.
    expect(jtiTag(`0AbCdEfG${'A'.repeat(24)}`)).toBeUndefined();
    expect(jtiTag('not a jti')).toBeUndefined();
  });

  it('sorts later issue times after earlier ones, as byte strings', () => {
    // Steps of one millisecond up to fifty years.
    const base = Date.UTC(2026, 0, 1);
    const times = [0, 1, 9, 10, 11, 35, 36, 37, 61, 62, 63, 3843, 3844, 86_400_000, 365 * 86_400_000, 50 * 365 * 86_400_000].map((d) => base + d);
    const jtis = times.map((t) => newJti(t, 'svc-a'));
    const sorted = [...jtis].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
    // Compare the time prefixes only: equal prefixes would leave the order to the random part.
    expect(sorted.map((j) => j.slice(0, 8))).toEqual(jtis.map((j) => j.slice(0, 8)));
    expect(new Set(jtis.map((j) => j.slice(0, 8))).size).toBe(times.length);
  });

  it('orders every consecutive millisecond over a long stretch', () => {
    const start = Date.UTC(2026, 10, 22);
    let previous = newJti(start, 'svc-a').slice(0, 8);
    const outOfOrder: number[] = [];
    for (let t = start + 1; t < start + 300_000; t += 7) {
      const prefix = newJti(t, 'svc-a').slice(0, 8);
      if (!(prefix > previous)) outOfOrder.push(t);
      previous = prefix;
    }
    expect(outOfOrder).toEqual([]);
  });
});
