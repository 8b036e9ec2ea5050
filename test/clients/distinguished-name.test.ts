import { describe, expect, it } from 'vitest';
import { parseDistinguishedName, sameDistinguishedName, type DistinguishedName } from '../../src/clients/distinguished-name.js';

// RFC 4514 strings as operators write them in clients.yaml. Matching against certificates is in
// test/oauth/certificate-match.test.ts; this is the parser and its error messages.

function dn(text: string): DistinguishedName {
  const parsed = parseDistinguishedName(text);
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed.dn;
}

describe('parseDistinguishedName', () => {
  it('reads RFC 4514 strings last RDN first, attribute types by name or OID', () => {
    expect(dn('CN=edge,O=Example')).toEqual([['2.5.4.10="example'], ['2.5.4.3="edge']]);
    expect(dn('2.5.4.3=edge,2.5.4.10=Example')).toEqual(dn('cn=edge, o=Example'));
    expect(dn('commonName=edge,organizationName=Example')).toEqual(dn('CN=edge,O=Example'));
  });

  it.each([
    ['an escaped comma, as a character or in hex', 'CN=Smith\\, John,O=Ex', 'CN=Smith\\2c John,O=Ex'],
    ['every escapable character', 'CN=\\\\\\"\\+\\,\\;\\<\\>\\=\\#x', 'CN=\\5C\\22\\2B\\2C\\3B\\3C\\3E\\3D\\23x'],
    ['UTF-8 given as hex escapes', 'CN=Ünïcode', 'CN=\\C3\\9Cn\\C3\\AFcode'],
    ['a multi-valued RDN in any order', 'OU=x + CN=Smith,O=Ex', 'CN=Smith+OU=x,O=Ex'],
    ['case and insignificant spaces', 'CN=Edge   Proxy,O=Example', ' cn = \\ edge proxy\\  ,  o = EXAMPLE '],
    ['a value as the hex of its BER', 'CN=abc', 'CN=#0C03616263'],
    ['a literal # inside a value', 'CN=a#b', 'CN=a\\#b'],
  ])('reads %s', (_what, a, b) => {
    expect(sameDistinguishedName(dn(a), dn(b))).toBe(true);
  });

  it('compares a value with a control character as it is: a NUL is not mapped away', () => {
    // RFC 4518 maps NUL to nothing; a certificate for "admin\0" must not pass for "admin".
    expect(sameDistinguishedName(dn('CN=admin\\00,O=Ex'), dn('CN=admin,O=Ex'))).toBe(false);
    expect(sameDistinguishedName(dn('CN=ad\\01min,O=Ex'), dn('CN=admin,O=Ex'))).toBe(false);
    expect(sameDistinguishedName(dn('CN=admin\\00,O=Ex'), dn('CN=admin\\00,O=Ex'))).toBe(true);
  });

  it('keeps RDN order and the grouping of attributes into RDNs', () => {
    expect(sameDistinguishedName(dn('CN=a,O=b'), dn('O=b,CN=a'))).toBe(false);
    expect(sameDistinguishedName(dn('CN=a+O=b'), dn('CN=a,O=b'))).toBe(false);
    expect(sameDistinguishedName(dn('CN=a,O=b'), dn('CN=a,O=b,C=DE'))).toBe(false);
  });

  it.each([
    ['', 'is empty'],
    ['   ', 'is empty'],
    ['Smith, John', 'expected an attribute type and "=" (as in CN=name) at character 1'],
    ['CN=a,,O=b', 'expected an attribute type and "=" (as in CN=name) at character 6'],
    ['CN=a,', 'expected an attribute type and "=" (as in CN=name) at character 6'],
    ['CN=a+', 'expected an attribute type and "=" (as in CN=name) at character 6'],
    ['FOO=bar', 'unknown attribute type "FOO" (write its OID instead, as in 2.5.4.3=name)'],
    ['01.2=bar', 'unknown attribute type "01.2" (write its OID instead, as in 2.5.4.3=name)'],
    ['CN=', 'CN has no value'],
    ['CN=  ,O=x', 'CN has no value'],
    ['CN=a\\', '"\\" at character 5 must be followed by one of \\ " + , ; < > space # = or two hex digits'],
    ['CN=a\\zz', '"\\" at character 5 must be followed by one of'],
    ['CN="quoted"', '""" at character 4 must be escaped with a backslash'],
    ['CN=a;O=b', '";" at character 5 must be escaped with a backslash'],
    ['CN=a\u0000', 'a NUL at character 5 must be escaped with a backslash'],
    ['CN=\\ff\\fe', 'the escaped bytes of the value at character 4 are not UTF-8'],
    ['CN=#zz', 'the value at character 4 starts with # but is not the hex of one BER-encoded value'],
    ['CN=#0c03616263ff', 'the value at character 4 starts with # but is not the hex of one BER-encoded value'],
    ['CN=#0c036162', 'the value at character 4 starts with # but is not the hex of one BER-encoded value'],
  ])('refuses %j: %s', (text, problem) => {
    const parsed = parseDistinguishedName(text);
    expect('problem' in parsed && parsed.problem).toContain(`is not an RFC 4514 distinguished name: ${problem}`);
  });
});
