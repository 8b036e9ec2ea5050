import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { formatTime, keyId, parseKeyFile, parseTime, serializeKeyFile } from '../../src/keys/key-file.js';
import { tempDir } from '../helpers.js';
import { ODD_PEM_FORMS } from './odd-pem.js';

const rsa = (bits = 2048) => generateKeyPairSync('rsa', { modulusLength: bits });
const ec = (namedCurve = 'P-256') => generateKeyPairSync('ec', { namedCurve });
const ed = () => generateKeyPairSync('ed25519');
const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const jwkOf = (k: KeyObject) => k.export({ format: 'jwk' });
const thumbprintOf = async (k: KeyObject) => calculateJwkThumbprint(await exportJWK(createPublicKey(k)), 'sha256');

const T1 = Date.parse('2026-11-30T10:00:00Z');
const T2 = Date.parse('2026-11-30T10:10:00Z');

describe('parseKeyFile', () => {
  it.each([
    ['PKCS#8 RSA PEM', () => rsa().privateKey, (k: KeyObject) => pkcs8(k), 'RS256', 'pkcs8'],
    ['PKCS#1 RSA PEM', () => rsa(3072).privateKey, (k: KeyObject) => k.export({ type: 'pkcs1', format: 'pem' }).toString(), 'RS256', 'pkcs1'],
    ['SEC1 EC PEM', () => ec().privateKey, (k: KeyObject) => k.export({ type: 'sec1', format: 'pem' }).toString(), 'ES256', 'sec1'],
    [
      'SEC1 EC PEM after the EC PARAMETERS block of `openssl ecparam -genkey`',
      () => ec().privateKey,
      (k: KeyObject) => `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${k.export({ type: 'sec1', format: 'pem' })}`,
      'ES256',
      'sec1',
    ],
    ['PKCS#8 Ed25519 PEM', () => ed().privateKey, (k: KeyObject) => pkcs8(k), 'EdDSA', 'pkcs8'],
    ['a private RSA JWK', () => rsa().privateKey, (k: KeyObject) => JSON.stringify({ ...jwkOf(k), kid: 'other-server-1', use: 'sig', alg: 'RS256' }), 'RS256', 'jwk'],
    ['a private EC JWK', () => ec().privateKey, (k: KeyObject) => JSON.stringify(jwkOf(k)), 'ES256', 'jwk'],
    ['a private Ed25519 JWK', () => ed().privateKey, (k: KeyObject) => JSON.stringify(jwkOf(k)), 'EdDSA', 'jwk'],
    [
      'a JWK Set with one private key among public ones',
      () => ec().privateKey,
      (k: KeyObject) => JSON.stringify({ keys: [jwkOf(createPublicKey(ec().privateKey)), jwkOf(k), jwkOf(createPublicKey(rsa().privateKey))] }),
      'ES256',
      'jwk',
    ],
  ] as const)('reads %s, with no times', async (_what, make, write, alg, format) => {
    const key = make();
    const parsed = parseKeyFile(write(key));
    expect(parsed).toMatchObject({ alg, format });
    expect(parsed.created).toBeUndefined();
    expect(parsed.signsFrom).toBeUndefined();
    expect(await keyId(parsed.privateKey)).toBe(await thumbprintOf(key));
  });

  it.each(ODD_PEM_FORMS)('reads PKCS#8 PEM with %s', async (_what, odd) => {
    const key = ec().privateKey;
    expect(await keyId(parseKeyFile(odd(pkcs8(key))).privateKey)).toBe(await thumbprintOf(key));
  });

  it('reads the times of the header lines, before other lines OpenSSL ignores, in any RFC 3339 zone', () => {
    const text = `Bag Attributes\n    friendlyName: tollgate\ntollgate-created:2026-11-30T11:00:00+01:00\r\nTollgate-Signs-From: 2026-11-30t10:10:00.000z\n${pkcs8(ec().privateKey)}`;
    expect(parseKeyFile(text)).toMatchObject({ created: T1, signsFrom: T2, alg: 'ES256' });
  });

  it.each([
    ['empty text', ''],
    ['text that is not PEM', 'hello'],
    ['a public key PEM', createPublicKey(rsa().privateKey).export({ type: 'spki', format: 'pem' }).toString()],
    ['a PKCS#1 public key PEM', createPublicKey(rsa().privateKey).export({ type: 'pkcs1', format: 'pem' }).toString()],
    ['a certificate only', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'],
    ['an encrypted PKCS#8 PEM', rsa().privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'x' }).toString()],
    ['two private keys in one PEM file', pkcs8(ec().privateKey) + pkcs8(ec().privateKey)],
    ['a damaged PEM body', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    ['an RSA-1024 key', pkcs8(rsa(1024).privateKey)],
    ['an EC P-384 key', pkcs8(ec('P-384').privateKey)],
    ['an EC secp256k1 key', pkcs8(ec('secp256k1').privateKey)],
    ['an Ed448 key', pkcs8(generateKeyPairSync('ed448').privateKey)],
    ['an X25519 key', pkcs8(generateKeyPairSync('x25519').privateKey)],
    ['a public JWK', JSON.stringify(jwkOf(createPublicKey(ec().privateKey)))],
    ['a JWK Set of public keys', JSON.stringify({ keys: [jwkOf(createPublicKey(ec().privateKey))] })],
    ['an empty JWK Set', '{"keys":[]}'],
    ['a JWK Set with two private keys', JSON.stringify({ keys: [jwkOf(ec().privateKey), jwkOf(ec().privateKey)] })],
    ['a JWK Set whose keys is not a list', '{"keys":{"kty":"EC"}}'],
    ['a JWK Set with a key that is not an object', '{"keys":["x"]}'],
    ['a symmetric JWK', '{"kty":"oct","k":"c2VjcmV0"}'],
    ['a private JWK on P-384', JSON.stringify(jwkOf(ec('P-384').privateKey))],
    ['an RSA-1024 private JWK', JSON.stringify(jwkOf(rsa(1024).privateKey))],
    ['a private JWK of an unknown curve', JSON.stringify({ kty: 'EC', crv: 'P-999', x: 'AA', y: 'AA', d: 'AA' })],
    ['a private JWK of an unknown type', '{"kty":"XYZ","d":"AA"}'],
    ['a private JWK with damaged members', JSON.stringify({ ...jwkOf(ec().privateKey), x: 'AA' })],
    ['broken JSON', '{"kty":'],
    ['a JSON list', '[{"kty":"EC"}]'],
    ['a header time that is not RFC 3339', `Tollgate-Created: yesterday\n${pkcs8(ec().privateKey)}`],
    ['a header time without a zone', `Tollgate-Created: 2026-11-30T10:00:00\n${pkcs8(ec().privateKey)}`],
    ['an impossible header date', `Tollgate-Signs-From: 2026-13-45T10:00:00Z\n${pkcs8(ec().privateKey)}`],
    ['a header line given twice', `Tollgate-Created: 2026-11-30T10:00:00Z\nTollgate-Created: 2026-11-30T10:00:00Z\n${pkcs8(ec().privateKey)}`],
    ['an unknown Tollgate header line', `Tollgate-Expires: 2026-11-30T10:00:00Z\n${pkcs8(ec().privateKey)}`],
  ])('refuses %s with a one-line reason that shows no key material', (_what, text) => {
    let message = '';
    try {
      parseKeyFile(text);
    } catch (err) {
      expect((err as Error).name).toBe('KeyFileError');
      message = (err as Error).message;
    }
    expect(message).toMatch(/^[a-z].*[^\n]$/);
    expect(message).not.toContain('\n');
    expect(message).not.toMatch(/BEGIN|"d"|[A-Za-z0-9+/]{40}/);
  });

  it('names the reason for the common mistakes', () => {
    const reason = (text: string) => {
      try {
        parseKeyFile(text);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(reason(createPublicKey(rsa().privateKey).export({ type: 'spki', format: 'pem' }).toString())).toMatch(/public key only/);
    expect(reason(JSON.stringify(jwkOf(createPublicKey(ec().privateKey))))).toMatch(/public JWK only/);
    expect(reason(pkcs8(rsa(1024).privateKey))).toMatch(/at least 2048 bits/);
    expect(reason(pkcs8(ec('P-384').privateKey))).toMatch(/EC P-256 key/);
    expect(reason(JSON.stringify({ keys: [jwkOf(ec().privateKey), jwkOf(ec().privateKey)] }))).toMatch(/2 private keys; import one key at a time/);
    expect(reason(rsa().privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'x' }).toString())).toMatch(/encrypted/);
    expect(reason(`Tollgate-Created: yesterday\n${pkcs8(ec().privateKey)}`)).toMatch(/Tollgate-Created line that is not an RFC 3339 time/);
  });
});

describe('serializeKeyFile', () => {
  it('writes the times as header lines before PKCS#8 PEM, and reads them back', async () => {
    const key = rsa().privateKey;
    const text = serializeKeyFile({ privateKey: key, created: T1, signsFrom: T2 });
    expect(text).toMatch(/^Tollgate-Created: 2026-11-30T10:00:00\.000Z\nTollgate-Signs-From: 2026-11-30T10:10:00\.000Z\n-----BEGIN PRIVATE KEY-----\n[\s\S]*-----END PRIVATE KEY-----\n$/);
    const back = parseKeyFile(text);
    expect(back).toMatchObject({ created: T1, signsFrom: T2, alg: 'RS256', format: 'pkcs8', bits: 2048 });
    expect(await keyId(back.privateKey)).toBe(await thumbprintOf(key));
    // Read back from a JWK and written again: the same file.
    expect(serializeKeyFile({ privateKey: parseKeyFile(JSON.stringify(jwkOf(key))).privateKey, created: T1, signsFrom: T2 })).toBe(text);
  });

  it('writes files OpenSSL reads as a plain key (openssl pkey -in)', () => {
    const dir = tempDir();
    const file = join(dir, 'k.pem');
    const key = ec().privateKey;
    writeFileSync(file, serializeKeyFile({ privateKey: key, created: T1, signsFrom: T2 }), { mode: 0o600 });
    const run = spawnSync('openssl', ['pkey', '-in', file, '-pubout'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString());
  });
});

describe('RFC 3339 times', () => {
  it('formats in UTC with milliseconds and parses only full date-times with a zone', () => {
    expect(formatTime(T1)).toBe('2026-11-30T10:00:00.000Z');
    expect(parseTime('2026-11-30T10:00:00Z')).toBe(T1);
    expect(parseTime('2026-11-30T05:00:00-05:00')).toBe(T1);
    expect(parseTime('2026-11-30T10:00:00.123456789Z')).toBe(T1 + 123);
    for (const bad of ['2026-11-30', '2026-11-30 10:00:00Z', '2026-11-30T10:00:00', '1764496800', 'now', '', '2026-02-30T10:00:00Z', '2026-11-30T24:00:00Z', '2026-11-30T10:00:00+24:00', '2026-11-30T10:00:00Zjunk']) {
      expect(parseTime(bad), bad).toBeUndefined();
    }
  });
});
