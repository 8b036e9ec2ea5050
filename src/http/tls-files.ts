import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/config.js';
import { ConfigError } from '../shared/config-error.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

/**
 * The listen.tls files, read and tried together as a TLS context, so that a missing file, a
 * key that does not match its certificate or a CA file that is no PEM is reported by name at
 * start (and by `config check`), not at the first handshake. Undefined when TLS is not served.
 */
export function readTlsFiles(config: Pick<Config, 'listen'>): TlsFiles | undefined {
  const tls = config.listen.tls;
  if (tls?.cert === undefined || tls.key === undefined) return undefined;
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw ConfigError.single(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const files: TlsFiles = { cert: read(tls.cert), key: read(tls.key), ...(tls.client_ca === undefined ? {} : { clientCa: read(tls.client_ca) }) };
  try {
    createSecureContext({ cert: files.cert, key: files.key, ...(files.clientCa === undefined ? {} : { ca: files.clientCa }) });
  } catch (err) {
    throw ConfigError.single(tls.cert, `cannot serve TLS with this certificate and key: ${(err as Error).message}`);
  }
  return files;
}
