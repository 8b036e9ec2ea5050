import type { Name } from '@peculiar/asn1-x509';
import { BaseStringBlock, fromBER } from 'asn1js';

// Distinguished names as RFC 5280 §7.1 compares them: RDN by RDN in order, the attributes of a
// multi-valued RDN as a set, each attribute by type OID and by value after RFC 4518 string
// preparation (case folded, insignificant spaces removed). A registered name is an RFC 4514
// string; a certificate's name is its DER, so neither side depends on how a library prints it.

/** RDNs in ASN.1 order (the reverse of RFC 4514's), each the sorted keys of its attributes. */
export type DistinguishedName = readonly (readonly string[])[];

export type ParsedDistinguishedName = { dn: DistinguishedName } | { problem: string };

export function sameDistinguishedName(a: DistinguishedName, b: DistinguishedName): boolean {
  return a.length === b.length && a.every((rdn, i) => rdn.length === b[i]!.length && rdn.every((key, j) => key === b[i]![j]));
}

/** The comparable form of a name parsed from a certificate. */
export function distinguishedNameOf(name: Name): DistinguishedName {
  return name.map((rdn) =>
    rdn
      .map(({ type, value }) => {
        const text = value.utf8String ?? value.printableString ?? value.ia5String ?? value.bmpString ?? value.universalString ?? value.teletexString;
        return attributeKey(type, text !== undefined ? stringKey(text) : derValueKey(new Uint8Array(value.anyValue ?? new ArrayBuffer(0))));
      })
      .sort(),
  );
}

// RFC 4514 §3 names, and the other short and long names OpenSSL and Node print.
const TYPES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    '2.5.4.3': ['cn', 'commonname'],
    '2.5.4.4': ['sn', 'surname'],
    '2.5.4.5': ['serialnumber'],
    '2.5.4.6': ['c', 'countryname'],
    '2.5.4.7': ['l', 'localityname'],
    '2.5.4.8': ['st', 'stateorprovincename'],
    '2.5.4.9': ['street', 'streetaddress'],
    '2.5.4.10': ['o', 'organizationname'],
    '2.5.4.11': ['ou', 'organizationalunitname'],
    '2.5.4.12': ['title'],
    '2.5.4.15': ['businesscategory'],
    '2.5.4.17': ['postalcode'],
    '2.5.4.42': ['gn', 'givenname'],
    '2.5.4.43': ['initials'],
    '2.5.4.44': ['generationqualifier'],
    '2.5.4.46': ['dnqualifier'],
    '2.5.4.65': ['pseudonym'],
    '2.5.4.97': ['organizationidentifier'],
    '0.9.2342.19200300.100.1.1': ['uid', 'userid'],
    '0.9.2342.19200300.100.1.25': ['dc', 'domaincomponent'],
    '1.2.840.113549.1.9.1': ['emailaddress', 'email', 'e'],
  }).flatMap(([oid, names]) => names.map((n) => [n, oid] as const)),
);

const TYPE = /([A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=\s*/y;
const NUMERIC_OID = /^(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))+$/;
const ESCAPABLE = new Set(['\\', '"', '+', ',', ';', '<', '>', ' ', '#', '=']);
const MUST_ESCAPE = new Set(['"', ';', '<', '>', '\0']);

class Problem extends Error {}

/**
 * Parses an RFC 4514 string. Spaces around `,`, `+` and `=` are allowed (they are how most
 * tools print names); anything else outside the grammar is a problem, reported with where it is.
 */
export function parseDistinguishedName(text: string): ParsedDistinguishedName {
  try {
    if (text.trim() === '') throw new Problem('is empty');
    const at = { i: 0 };
    const rdns: string[][] = [];
    for (;;) {
      const rdn = [readAttribute(text, at)];
      while (text[at.i] === '+') {
        at.i++;
        rdn.push(readAttribute(text, at));
      }
      rdns.push(rdn.sort());
      if (at.i === text.length) break;
      at.i++; // the comma the value stopped at
    }
    return { dn: rdns.reverse() };
  } catch (err) {
    if (err instanceof Problem) return { problem: `is not an RFC 4514 distinguished name: ${err.message}` };
    throw err;
  }
}

function readAttribute(text: string, at: { i: number }): string {
  while (/\s/.test(text[at.i] ?? '')) at.i++;
  TYPE.lastIndex = at.i;
  const m = TYPE.exec(text);
  if (m === null) {
    const afterComma = at.i > 0 && text.slice(0, at.i).trimEnd().endsWith(',') && at.i < text.length;
    const hint = afterComma ? ' (a comma inside a value is written \\,)' : '';
    throw new Problem(`expected an attribute type and "=" (as in CN=name) at character ${at.i + 1}${hint}`);
  }
  const name = m[1]!;
  const oid = NUMERIC_OID.test(name) ? name : TYPES.get(name.toLowerCase());
  if (oid === undefined) throw new Problem(`unknown attribute type "${name}" (write its OID instead, as in 2.5.4.3=name)`);
  at.i = TYPE.lastIndex;
  const key = text[at.i] === '#' ? readHexValue(text, at) : readStringValue(text, at, name);
  while (text[at.i] === ' ') at.i++;
  return attributeKey(oid, key);
}

/** `#` then the BER encoding of the value in hex (RFC 4514 §2.4). */
function readHexValue(text: string, at: { i: number }): string {
  const start = at.i;
  const hex = /#([0-9A-Fa-f]*)/y;
  hex.lastIndex = start;
  const digits = hex.exec(text)![1]!;
  at.i = hex.lastIndex;
  const ber = Buffer.from(digits, 'hex');
  const { offset } = fromBER(new Uint8Array(ber));
  if (digits.length === 0 || digits.length % 2 !== 0 || offset !== ber.length || !/^ *(?:[,+]|$)/.test(text.slice(at.i))) {
    throw new Problem(`the value at character ${start + 1} starts with # but is not the hex of one BER-encoded value (write \\# for a literal #)`);
  }
  return derValueKey(ber);
}

function readStringValue(text: string, at: { i: number }, name: string): string {
  const start = at.i;
  const bytes: number[] = [];
  while (at.i < text.length && text[at.i] !== ',' && text[at.i] !== '+') {
    const c = text[at.i]!;
    if (c === '\\') {
      const next = text[at.i + 1];
      if (next !== undefined && ESCAPABLE.has(next)) {
        bytes.push(next.charCodeAt(0));
        at.i += 2;
      } else if (/^[0-9A-Fa-f]{2}$/.test(text.slice(at.i + 1, at.i + 3))) {
        bytes.push(parseInt(text.slice(at.i + 1, at.i + 3), 16));
        at.i += 3;
      } else {
        throw new Problem(`"\\" at character ${at.i + 1} must be followed by one of \\ " + , ; < > space # = or two hex digits`);
      }
    } else if (MUST_ESCAPE.has(c)) {
      throw new Problem(`${c === '\0' ? 'a NUL' : `"${c}"`} at character ${at.i + 1} must be escaped with a backslash`);
    } else {
      const char = String.fromCodePoint(text.codePointAt(at.i)!);
      bytes.push(...Buffer.from(char, 'utf8'));
      at.i += char.length;
    }
  }
  let value: string;
  try {
    value = new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    throw new Problem(`the escaped bytes of the value at character ${start + 1} are not UTF-8`);
  }
  if (value.trim() === '') throw new Problem(`${name} has no value`);
  return stringKey(value);
}

function attributeKey(oid: string, valueKey: string): string {
  return `${oid}=${valueKey}`;
}

/** A value given as DER or BER: a string type compares as its text, anything else as its bytes. */
function derValueKey(der: Uint8Array): string {
  const { offset, result } = fromBER(der);
  if (offset === der.length && result instanceof BaseStringBlock) return stringKey(result.getValue());
  return `#${Buffer.from(der).toString('hex')}`;
}

// RFC 4518 §2.2 characters mapped to nothing, and those mapped to a space. Control characters
// and combining marks are what these classes are about, hence the lint exceptions.
// biome-ignore lint/suspicious/noControlCharactersInRegex: RFC 4518 maps these control characters to nothing
// biome-ignore lint/suspicious/noMisleadingCharacterClass: U+034F and the variation selectors are listed one by one on purpose
const MAPPED_TO_NOTHING = /[\u0000-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F\u00AD\u034F\u06DD\u070F\u1806\u180B-\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2063\u206A-\u206F\uFE00-\uFE0F\uFEFF\uFFF9-\uFFFC]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const MAPPED_TO_SPACE = /[\t\n\v\f\r\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/g;

/**
 * RFC 4518 string preparation for caseIgnoreMatch (RFC 5280 §7.1): map, case fold, NFKC, and
 * insignificant space handling (no leading or trailing spaces, inner runs count as one).
 */
function stringKey(value: string): string {
  // A value with control characters is compared as it is, unmapped: RFC 4518 would drop a NUL,
  // so that a certificate a careless CA issued for "admin\0" would match "admin".
  if (CONTROL.test(value)) return `!${Buffer.from(value, 'utf8').toString('hex')}`;
  const mapped = value.replace(MAPPED_TO_NOTHING, '').replace(MAPPED_TO_SPACE, ' ');
  // Upper then lower case folds ß to ss and the like, as RFC 3454 table B.2 does.
  const folded = mapped.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
  return `"${folded.trim().replace(/ +/g, ' ')}`;
}
