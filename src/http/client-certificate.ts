import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { listHas, toBlockList } from '../shared/address-list.js';
import { ConfigError } from '../shared/config-error.js';
import type { PresentedCertificate } from '../oauth/client-auth.js';

export interface ClientCertificateOptions {
  /** PEM file of the CAs client certificates must chain to (tls_client_auth). */
  clientCaFile?: string;
  /** Header a TLS-terminating proxy puts the client certificate in (URL-encoded PEM). */
  header?: string;
  /** Addresses of the proxies believed; the header from anyone else is ignored. */
  trustedProxies: readonly string[];
}

/** Reads the client certificate of a request, from its TLS connection or a trusted proxy. */
export type CertificateSource = (req: FastifyRequest) => PresentedCertificate | undefined;

export function certificateSource(options: ClientCertificateOptions): CertificateSource {
  const cas = options.clientCaFile === undefined ? [] : readCas(options.clientCaFile);
  const proxies = toBlockList(options.trustedProxies);
  const header = options.header;
  return (req) => {
    const socket = req.raw.socket;
    if (header !== undefined) {
      const value = req.headers[header];
      const peer = socket.remoteAddress ?? '';
      // Only a listed proxy may speak for the client; anyone else could write any header.
      if (typeof value === 'string' && value !== '' && listHas(proxies, peer)) return fromHeader(value, cas);
    }
    const tls = socket as TLSSocket;
    if (typeof tls.getPeerX509Certificate !== 'function') return undefined;
    const cert = tls.getPeerX509Certificate();
    return cert === undefined ? undefined : { cert, chainVerified: tls.authorized === true };
  };
}

function fromHeader(value: string, cas: readonly X509Certificate[]): PresentedCertificate | undefined {
  let cert: X509Certificate;
  try {
    const text = decodeURIComponent(value);
    cert = new X509Certificate(text.includes('-----BEGIN') ? text : Buffer.from(text, 'base64'));
  } catch {
    return undefined;
  }
  const now = Date.now();
  const current = Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
  // The proxy may pass certificates it did not verify (self-signed ones, for one method), so the
  // chain is checked here against the same client CAs.
  const chainVerified = current && cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  return { cert, chainVerified };
}

/** Every certificate in a PEM file. */
export function readCas(file: string): X509Certificate[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw ConfigError.single(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw ConfigError.single(file, 'holds no PEM certificate');
  try {
    return pems.map((pem) => new X509Certificate(pem));
  } catch {
    throw ConfigError.single(file, 'holds a certificate that cannot be read');
  }
}
