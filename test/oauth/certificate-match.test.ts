import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientSchema, toClient } from '../../src/clients/client-schema.js';
import type { TlsSubject } from '../../src/clients/registry.js';
import { certificateMatches } from '../../src/oauth/certificate-match.js';
import { tempDir } from '../helpers.js';
import { makeCertificate, makePki, type Pki } from '../tls-fixtures.js';

// RFC 8705 §2.1.2 matching on real certificates made by openssl, with the registered value going
// through the registry's own schema, as it does when clients.yaml is loaded.

let pki: Pki;
const certs = new Map<string, X509Certificate>();

const CERTS: Record<string, { subj: string; san?: string; stringMask?: 'pkix' }> = {
  smith: { subj: '/O=Ex/CN=Smith\\, John' },
  multi: { subj: '/O=Ex/OU=x+CN=Smith' },
  plain: { subj: '/DC=org/DC=example/O=Example/CN=Edge  Proxy/emailAddress=ops@example.org' },
  bmp: { subj: '/O=Ex/CN=Ünïcode Name', stringMask: 'pkix' },
  sans: {
    subj: '/CN=sans',
    san: 'DNS:Edge.Internal,URI:spiffe://Example.org/ns/Prod/sa/edge,IP:10.1.2.3,IP:2001:db8::1,email:Alice@Example.COM',
  },
  nosan: { subj: '/CN=edge.internal' },
};

beforeAll(() => {
  pki = makePki(tempDir());
  for (const [name, options] of Object.entries(CERTS)) certs.set(name, new X509Certificate(makeCertificate(pki, name, options)));
});

function registered(field: string, value: string): TlsSubject {
  const entry = clientSchema.parse({ client_id: 'c', auth_methods: ['tls_client_auth'], audiences: ['https://api.test'], [field]: value });
  return toClient(entry).tlsSubject!;
}

const matches = (cert: string, field: string, value: string) => certificateMatches(certs.get(cert)!, registered(field, value));
const DN = 'tls_client_auth_subject_dn';

describe('tls_client_auth_subject_dn', () => {
  it('matches a subject whose value holds an escaped comma (it never matched Node’s printed subject)', () => {
    expect(matches('smith', DN, 'CN=Smith\\, John,O=Ex')).toBe(true);
    expect(matches('smith', DN, 'CN=Smith\\2C John,O=Ex')).toBe(true);
    expect(matches('smith', DN, 'CN=Smith\\, Jane,O=Ex')).toBe(false);
    expect(matches('smith', DN, 'CN=Smith,CN=John,O=Ex')).toBe(false);
  });

  it('matches a multi-valued RDN as a set, in any order (it never matched)', () => {
    expect(matches('multi', DN, 'OU=x+CN=Smith,O=Ex')).toBe(true);
    expect(matches('multi', DN, 'OU=x + CN=Smith,O=Ex')).toBe(true);
    expect(matches('multi', DN, 'CN=Smith+OU=x,O=Ex')).toBe(true);
    // The same attributes as separate RDNs are another name.
    expect(matches('multi', DN, 'CN=Smith,OU=x,O=Ex')).toBe(false);
    expect(matches('multi', DN, 'CN=Smith,O=Ex')).toBe(false);
  });

  it('compares types by OID and case-insensitively, values after RFC 4518 preparation', () => {
    const subject = 'emailAddress=ops@example.org,CN=Edge  Proxy,O=Example,DC=example,DC=org';
    expect(matches('plain', DN, subject)).toBe(true);
    expect(matches('plain', DN, 'E=OPS@Example.org, cn = edge proxy , o=EXAMPLE, dc=Example, DC=ORG')).toBe(true);
    expect(matches('plain', DN, '1.2.840.113549.1.9.1=ops@example.org,2.5.4.3=\\ Edge Proxy\\ ,2.5.4.10=Example,DC=example,DC=org')).toBe(true);
    // #hex: the BER of a UTF8String "Example".
    expect(matches('plain', DN, `emailAddress=ops@example.org,CN=Edge Proxy,O=#0c074578616d706c65,DC=example,DC=org`)).toBe(true);
    expect(matches('plain', DN, 'emailAddress=ops@example.org,CN=EdgeProxy,O=Example,DC=example,DC=org')).toBe(false);
  });

  it('holds RDN order significant, and every RDN required', () => {
    expect(matches('plain', DN, 'DC=org,DC=example,O=Example,CN=Edge Proxy,emailAddress=ops@example.org')).toBe(false);
    expect(matches('plain', DN, 'CN=Edge Proxy,O=Example,DC=example,DC=org')).toBe(false);
    expect(matches('plain', DN, 'OU=more,emailAddress=ops@example.org,CN=Edge Proxy,O=Example,DC=example,DC=org')).toBe(false);
  });

  it('compares the text of a value whatever string type the certificate encodes it in', () => {
    expect(certs.get('bmp')!.subject).toContain('Ünïcode');
    expect(matches('bmp', DN, 'CN=Ünïcode Name,O=Ex')).toBe(true);
    expect(matches('bmp', DN, 'CN=\\C3\\9Cn\\C3\\AFcode name,O=Ex')).toBe(true);
    expect(matches('bmp', DN, 'CN=Unicode Name,O=Ex')).toBe(false);
  });
});

describe('tls_client_auth_san_*', () => {
  it.each([
    ['san_dns', 'edge.internal', true],
    ['san_dns', 'EDGE.INTERNAL', true],
    ['san_dns', 'other.internal', false],
    ['san_dns', 'example.org', false],
    // RFC 5280 §7.4: scheme and host are case-insensitive, the rest is not.
    ['san_uri', 'spiffe://Example.org/ns/Prod/sa/edge', true],
    ['san_uri', 'SPIFFE://example.ORG/ns/Prod/sa/edge', true],
    ['san_uri', 'spiffe://example.org/ns/prod/sa/edge', false],
    ['san_ip', '10.1.2.3', true],
    ['san_ip', '10.1.2.4', false],
    ['san_ip', '::ffff:10.1.2.3', false],
    // It never matched Node's "IP Address:2001:DB8:0:0:0:0:0:1".
    ['san_ip', '2001:db8::1', true],
    ['san_ip', '2001:DB8:0:0:0:0:0:1', true],
    ['san_ip', '2001:0db8:0000::0001', true],
    ['san_ip', '2001:db8::2', false],
    // RFC 5280 §7.5: the local part is case-sensitive, the domain is not.
    ['san_email', 'Alice@example.com', true],
    ['san_email', 'Alice@EXAMPLE.com', true],
    ['san_email', 'alice@example.com', false],
    ['san_email', 'bob@example.com', false],
  ])('%s %s matches: %s', (kind, value, expected) => {
    expect(matches('sans', `tls_client_auth_${kind}`, value)).toBe(expected);
  });

  it('matches a SAN only of its own kind', () => {
    expect(matches('sans', 'tls_client_auth_san_dns', '10.1.2.3')).toBe(false);
    expect(matches('sans', 'tls_client_auth_san_email', 'spiffe://Example.org/ns/Prod/sa/edge')).toBe(false);
    // A subject CN is not a SAN.
    expect(matches('nosan', 'tls_client_auth_san_dns', 'edge.internal')).toBe(false);
    expect(matches('nosan', DN, 'CN=edge.internal')).toBe(true);
  });
});
