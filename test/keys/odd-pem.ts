import { generateKeyPairSync } from 'node:crypto';

/**
 * PKCS#8 PEM as operators' tools write it, which Node's crypto reads and jose's importPKCS8
 * alone does not: each turns a clean PEM into such a file.
 */
export const ODD_PEM_FORMS: readonly (readonly [string, (pem: string) => string])[] = [
  ['a leading blank line', (pem) => `\n${pem}`],
  ['a UTF-8 byte-order mark', (pem) => `\uFEFF${pem}`],
  [
    'the Bag Attributes lines of `openssl pkcs12 -nodes`',
    (pem) => `Bag Attributes\n    localKeyID: 3E 6A 1F 00 9B 21 C4 5D \n    friendlyName: tollgate\nKey Attributes: <No Attributes>\n${pem}`,
  ],
];

/** A fresh EC P-256 private key as clean PKCS#8 PEM (quick to make). */
export function ecPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}
