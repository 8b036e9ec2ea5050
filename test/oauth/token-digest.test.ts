import { describe, expect, it } from 'vitest';
import { readPresentedToken, sameDigest, tokenDigest } from '../../src/oauth/token-digest.js';

describe('tokenDigest', () => {
  it('is SHA-256 in base64url, the format stores already hold', () => {
    // FIPS 180-2's "abc" vector (ba7816bf…15ad), in base64url: a different function would leave
    // every token recorded before an upgrade inactive.
    expect(tokenDigest('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(tokenDigest('a.b.c')).not.toBe(tokenDigest('a.b.d'));
  });

  it('compares digests by value, and digests of other lengths as different', () => {
    expect(sameDigest(tokenDigest('x'), tokenDigest('x'))).toBe(true);
    expect(sameDigest(tokenDigest('x'), tokenDigest('y'))).toBe(false);
    expect(sameDigest(tokenDigest('x'), tokenDigest('x').slice(1))).toBe(false);
  });
});

describe('readPresentedToken', () => {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

  it('reads the jti and kid of a compact JWS without trusting it', () => {
    const token = `${part({ alg: 'RS256', kid: 'k1' })}.${part({ jti: 'abc', sub: 'svc' })}.c2ln`;
    expect(readPresentedToken(token)).toEqual({ jti: 'abc', kid: 'k1', claims: { jti: 'abc', sub: 'svc' } });
  });

  it('is undefined for anything that is not three parts with JSON objects and a string jti', () => {
    const header = part({ alg: 'RS256' });
    for (const token of [
      '',
      'abc',
      `${header}.${part({ jti: 'a' })}`,
      `${header}.${part({ jti: 'a' })}.s.x`,
      `${header}..s`,
      `.${part({ jti: 'a' })}.s`,
      `${header}.${part({ jti: 7 })}.s`,
      `${header}.${part({ jti: '' })}.s`,
      `${header}.${part(['jti'])}.s`,
      `${header}.${part(null)}.s`,
      `${header}.not*base64.s`,
      `${header}.${Buffer.from('{"jti":').toString('base64url')}.s`,
      `${header}.${part({ jti: 'a', pad: 'x'.repeat(9000) })}.s`,
    ]) {
      expect(readPresentedToken(token), token.slice(0, 60)).toBeUndefined();
    }
  });
});
