import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files made with the openssl command for one test file: CAs, server and client certificates. */
export interface Pki {
  dir: string;
  file(name: string): string;
  pem(name: string): string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * In `dir`: ca (CN=Test Client CA), other-ca, server (127.0.0.1, issued by ca), edge (client
 * certificate CN=edge-proxy,O=Example with SAN DNS:edge.internal, issued by ca), stranger
 * (the same subject, issued by other-ca) and selfsigned (CN=batch-runner). Each X has X.pem
 * and X.key.
 */
export function makePki(dir: string): Pki {
  const ca = (name: string, cn: string) =>
    openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`);
  const issued = (name: string, issuer: string, subj: string, san: string) => {
    openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  ca('ca', 'Test Client CA');
  ca('other-ca', 'Other CA');
  issued('server', 'ca', '/CN=127.0.0.1', 'IP:127.0.0.1');
  issued('edge', 'ca', '/O=Example/CN=edge-proxy', 'DNS:edge.internal');
  issued('stranger', 'other-ca', '/O=Example/CN=edge-proxy', 'DNS:edge.internal');
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'selfsigned.key', '-out', 'selfsigned.pem', '-days', '2', '-subj', '/CN=batch-runner');
  return { dir, file: (name) => join(dir, name), pem: (name) => readFileSync(join(dir, name), 'utf8') };
}

/**
 * One more certificate in pki.dir, issued by `issuer` (default ca): `name`.pem and `name`.key.
 * `subj` is in openssl's -subj form (a `+` joins a multi-valued RDN, `\,` is a literal comma),
 * `san` in its subjectAltName form (`DNS:a,IP:2001:db8::1,URI:…,email:…`). With `stringMask:
 * 'pkix'` openssl writes non-ASCII values as BMPString instead of UTF8String.
 */
export function makeCertificate(pki: Pki, name: string, options: { subj: string; san?: string; issuer?: string; stringMask?: 'pkix' | 'utf8only' }): string {
  const { dir } = pki;
  writeFileSync(join(dir, `${name}.cnf`), `[req]\ndistinguished_name = dn\nstring_mask = ${options.stringMask ?? 'utf8only'}\n[dn]\n`);
  openssl(dir, 'req', '-config', `${name}.cnf`, '-utf8', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', options.subj);
  const issuer = options.issuer ?? 'ca';
  const ext = options.san === undefined ? [] : ['-extfile', `${name}.ext`];
  if (options.san !== undefined) writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${options.san}\n`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...ext);
  return pki.pem(`${name}.pem`);
}
