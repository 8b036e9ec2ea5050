import type { X509Certificate } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { Client, TlsSubject } from '../clients/registry.js';

// RFC 8705 §2: how a client certificate is matched to a registered client.

/** Compares the registered subject DN (RFC 4514) or SAN with the certificate's. */
export function certificateMatches(cert: X509Certificate, subject: TlsSubject): boolean {
  if (subject.kind === 'subject_dn') return sameDn(subject.value, cert.subject);
  const prefix = { san_dns: 'DNS:', san_uri: 'URI:', san_ip: 'IP Address:', san_email: 'email:' }[subject.kind];
  const names = (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^"|"$/g, ''));
  return names.some((n) => n.startsWith(prefix) && sanValueEquals(subject.kind, n.slice(prefix.length), subject.value));
}

function sanValueEquals(kind: TlsSubject['kind'], actual: string, expected: string): boolean {
  // DNS names and email domains are case-insensitive; URIs are compared as written.
  return kind === 'san_dns' || kind === 'san_email' ? actual.toLowerCase() === expected.toLowerCase() : actual === expected;
}

/**
 * Distinguished names compared attribute by attribute: RFC 4514 writes them last RDN first and
 * comma-separated, Node prints them first RDN first, one per line. Attribute types are
 * case-insensitive; values are compared exactly.
 */
function sameDn(rfc4514: string, nodeSubject: string): boolean {
  const registered = rfc4514
    .split(/(?<!\\),/)
    .map((rdn) => normalizeRdn(rdn.replace(/\\,/g, ',')))
    .sort();
  const presented = nodeSubject
    .split('\n')
    .filter((l) => l !== '')
    .map(normalizeRdn)
    .sort();
  return registered.length === presented.length && registered.every((r, i) => r === presented[i]);
}

function normalizeRdn(rdn: string): string {
  const eq = rdn.indexOf('=');
  return `${rdn.slice(0, eq).trim().toUpperCase()}=${rdn.slice(eq + 1).trim()}`;
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
