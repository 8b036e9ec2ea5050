import { createHash, type X509Certificate } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type GeneralName, id_ce_subjectAltName, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { canonicalIp } from '../shared/address-list.js';
import type { Client, TlsSubject } from '../clients/registry.js';
import { distinguishedNameOf, sameDistinguishedName, type DistinguishedName } from '../clients/distinguished-name.js';

// RFC 8705 §2.1.2: how a client certificate is matched to a registered client. Both the subject
// and the SANs are read from the certificate's DER, never from Node's printed strings, whose
// escaping and address notation differ from what an operator registers.

/** Whether the certificate holds the registered subject DN, or the registered SAN among its SANs. */
export function certificateMatches(cert: X509Certificate, subject: TlsSubject): boolean {
  const names = namesOf(cert);
  if (names === undefined) return false;
  if (subject.kind === 'subject_dn') return sameDistinguishedName(subject.dn, names.subject);
  return names.altNames.some((name) => sanMatches(subject.kind, subject.value, name));
}

interface CertificateNames {
  subject: DistinguishedName;
  altNames: readonly GeneralName[];
}

// Decoding a certificate's ASN.1 costs about a millisecond of the event loop, and a client
// presents the same certificate on every request: the names are kept per certificate digest.
const NAMES_KEPT = 1024;
const namesByDigest = new Map<string, CertificateNames | null>();

function namesOf(cert: X509Certificate): CertificateNames | undefined {
  const digest = createHash('sha256').update(cert.raw).digest('base64url');
  let names = namesByDigest.get(digest);
  if (names === undefined) {
    names = decodeNames(cert);
    if (namesByDigest.size >= NAMES_KEPT) namesByDigest.delete(namesByDigest.keys().next().value!);
    namesByDigest.set(digest, names);
  }
  return names ?? undefined;
}

function decodeNames(cert: X509Certificate): CertificateNames | null {
  let tbs: Certificate['tbsCertificate'];
  try {
    tbs = AsnConvert.parse(cert.raw, Certificate).tbsCertificate;
  } catch {
    return null;
  }
  const ext = tbs.extensions?.find((e) => e.extnID === id_ce_subjectAltName);
  let altNames: GeneralName[] = [];
  try {
    if (ext !== undefined) altNames = [...AsnConvert.parse(ext.extnValue, SubjectAlternativeName)];
  } catch {
    // An undecodable SAN extension holds no name to match.
  }
  return { subject: distinguishedNameOf(tbs.subject), altNames };
}

function sanMatches(kind: Exclude<TlsSubject['kind'], 'subject_dn'>, registered: string, name: GeneralName): boolean {
  switch (kind) {
    case 'san_dns':
      return name.dNSName !== undefined && dnsKey(name.dNSName) === dnsKey(registered);
    case 'san_uri':
      return name.uniformResourceIdentifier !== undefined && uriKey(name.uniformResourceIdentifier) === uriKey(registered);
    case 'san_email':
      return name.rfc822Name !== undefined && mailboxKey(name.rfc822Name) === mailboxKey(registered);
    case 'san_ip': {
      // Compared as addresses: 2001:db8::1 is 2001:DB8:0:0:0:0:0:1. An IPv4 address and its
      // IPv4-mapped IPv6 form are different iPAddress octets (RFC 5280 §4.2.1.6), so they differ.
      const presented = name.iPAddress === undefined ? undefined : canonicalIp(name.iPAddress);
      return presented !== undefined && presented === canonicalIp(registered);
    }
  }
}

/** DNS names are case-insensitive (RFC 4343); a name in Unicode is compared as its A-label. */
function dnsKey(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range, from NUL up
  return (/^[\x00-\x7f]*$/.test(name) ? name : domainToASCII(name) || name).toLowerCase();
}

/** RFC 5280 §7.4: scheme and host compare without regard to case, the rest exactly. */
function uriKey(uri: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(?:\/\/([^/?#]*))?(.*)$/s.exec(uri);
  if (m === null) return uri;
  const [, scheme, authority, rest] = m;
  if (authority === undefined) return `${scheme!.toLowerCase()}:${rest}`;
  const at = authority.lastIndexOf('@') + 1;
  return `${scheme!.toLowerCase()}://${authority.slice(0, at)}${authority.slice(at).toLowerCase()}${rest}`;
}

/** RFC 5280 §7.5: the local part is case-sensitive, the domain is not. */
function mailboxKey(mailbox: string): string {
  const at = mailbox.lastIndexOf('@');
  return at === -1 ? mailbox : `${mailbox.slice(0, at)}@${dnsKey(mailbox.slice(at + 1))}`;
}

export async function certificateKeyRegistered(cert: X509Certificate, client: Client): Promise<boolean> {
  if (client.jwks === undefined) return false;
  let presented: string;
  try {
    presented = await calculateJwkThumbprint(await exportJWK(cert.publicKey), 'sha256');
  } catch {
    return false;
  }
  for (const jwk of client.jwks) {
    try {
      if ((await calculateJwkThumbprint(jwk, 'sha256')) === presented) return true;
    } catch {
      // A key the thumbprint cannot be taken of matches nothing.
    }
  }
  return false;
}
