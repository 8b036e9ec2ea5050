import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyId, parseKeyFile, serializeKeyFile } from '../../src/keys/key-file.js';
import { hashOf, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { ecPem } from '../keys/odd-pem.js';
import { startServerProcess } from '../server-process.js';
import { expectUserError, lines, tollgateInProcess, type CliRun } from './run-cli.js';

const MIN = 60_000;
const T1 = Date.parse('2026-11-30T10:00:00Z');
const T2 = Date.parse('2026-11-30T10:10:00Z');

const config = (keys = '') => `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys${keys} }
store: { kind: memory }
`;
let clients = '';
beforeAll(async () => {
  clients = `clients:\n  - client_id: svc\n    secrets: [{ hash: "${await hashOf('svc-secret-0123456789abcdefghijklmnopqrst')}" }]\n    audiences: [https://api.test]\n`;
});
const fixture = (keys = '') => writeFixture({ config: config(keys), clients });

const keys = (f: Fixture, args: string[], input?: string): Promise<CliRun> =>
  tollgateInProcess(['keys', ...args, '--config', f.configFile], { cwd: f.dir, ...(input === undefined ? {} : { input }) });
const keyFiles = (dir: string) => {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
};
/** A key file written somewhere outside the key folder; returns its path. */
function source(text: string, name = 'key.pem'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

const rsa = (bits = 2048) => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
const ec = (namedCurve = 'P-256') => generateKeyPairSync('ec', { namedCurve }).privateKey;
const jwk = (k: KeyObject) => k.export({ format: 'jwk' });

describe('keys import', () => {
  it.each([
    ['PKCS#8 PEM', () => ec(), (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['PKCS#1 RSA PEM', () => rsa(), (k: KeyObject) => k.export({ type: 'pkcs1', format: 'pem' }).toString()],
    ['SEC1 EC PEM', () => ec(), (k: KeyObject) => k.export({ type: 'sec1', format: 'pem' }).toString()],
    ['a private JWK of another authorization server', () => rsa(), (k: KeyObject) => JSON.stringify({ ...jwk(k), kid: 'their-kid', use: 'sig' })],
    ['a JWK Set with one private key', () => ec(), (k: KeyObject) => JSON.stringify({ keys: [jwk(createPublicKey(ec())), jwk(k)] })],
  ] as const)('brings in %s: prints its RFC 7638 kid, writes <kid>.pem (0600) created now, signing after publish_before_use', async (_what, make, write) => {
    const f = fixture();
    const key = make();
    const before = Date.now();
    const run = await keys(f, ['import', source(write(key))]);
    const after = Date.now();
    expect(run.code, run.stderr).toBe(0);
    const kid = await keyId(key);
    expect(run.stdout).toBe(`${kid}\n`);
    expect(keyFiles(f.keysDir)).toEqual([`${kid}.pem`]);
    const file = join(f.keysDir, `${kid}.pem`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const written = parseKeyFile(readFileSync(file, 'utf8'));
    expect(written.format).toBe('pkcs8');
    expect(written.created).toBeGreaterThanOrEqual(before);
    expect(written.created).toBeLessThanOrEqual(after);
    expect(written.signsFrom! - written.created!).toBe(10 * MIN);
    expect(await keyId(written.privateKey)).toBe(kid);
    const [said, ...warnings] = lines(run.stderr);
    expect(said).toMatch(new RegExp(`^imported (RS256|ES256) key ${kid} into .*as the only key, it signs as soon as a server loads it$`));
    // keys.algorithm is RS256 here.
    expect(warnings).toHaveLength(written.alg === 'RS256' ? 0 : 1);
  });

  it("keeps the times of a file with tollgate's header lines; --created and --signs-from override them; `now` means now", async () => {
    const f = fixture();
    const key = ec();
    const file = source(serializeKeyFile({ privateKey: key, created: T1, signsFrom: T2 }));
    const run = await keys(f, ['import', file]);
    expect(run.code, run.stderr).toBe(0);
    const kid = run.stdout.trim();
    expect(parseKeyFile(readFileSync(join(f.keysDir, `${kid}.pem`), 'utf8'))).toMatchObject({ created: T1, signsFrom: T2 });

    const g = fixture();
    const before = Date.now();
    const flagged = await keys(g, ['import', file, '--created', '2026-01-01T00:00:00+02:00', '--signs-from', 'now']);
    expect(flagged.code, flagged.stderr).toBe(0);
    const times = parseKeyFile(readFileSync(join(g.keysDir, `${kid}.pem`), 'utf8'));
    expect(times.created).toBe(Date.parse('2025-12-31T22:00:00Z'));
    expect(times.signsFrom).toBeGreaterThanOrEqual(before);
    expect(times.signsFrom).toBeLessThanOrEqual(Date.now());
  });

  it('reads the key from stdin with FILE -', async () => {
    const f = fixture();
    const key = ec();
    const run = await keys(f, ['import', '-'], JSON.stringify(jwk(key)));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(await keyId(key));
  });

  it('warns of a key of another algorithm than keys.algorithm, and says when a second key signs', async () => {
    const f = fixture();
    await keys(f, ['import', source(rsa().export({ type: 'pkcs8', format: 'pem' }).toString())]);
    const run = await keys(f, ['import', source(ecPem()), '--signs-from', '2027-01-01T00:00:00Z']);
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(/^imported ES256 key \S+ into .*: running servers publish it within seconds; it signs new tokens from 2027-01-01T00:00:00\.000Z$/),
      'warning: the key signs ES256 while keys.algorithm is RS256: resource servers that accept only RS256 refuse its tokens',
    ]);
  });

  it('refuses a key that is already in the folder, under any file name, in one line', async () => {
    const f = fixture();
    const pem = ecPem();
    const kid = await keyId(createPrivateKey(pem));
    mkdirSync(f.keysDir);
    writeFileSync(join(f.keysDir, 'by-hand.pem'), pem, { mode: 0o600 });
    const file = source(JSON.stringify(jwk(createPrivateKey(pem))));
    expectUserError(await keys(f, ['import', file]), new RegExp(`^tollgate: ${file}: holds a key already in the key directory: kid ${kid} \\(.*by-hand\\.pem\\)\n$`));
    expect(keyFiles(f.keysDir)).toEqual(['by-hand.pem']);
  });

  const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
  it.each([
    ['a public key', () => createPublicKey(ec()).export({ type: 'spki', format: 'pem' }).toString(), /holds a public key only/],
    ['a public JWK', () => JSON.stringify(jwk(createPublicKey(ec()))), /public JWK only/],
    ['a JWK Set of public keys', () => JSON.stringify({ keys: [jwk(createPublicKey(ec()))] }), /public keys only/],
    ['a JWK Set of two private keys', () => JSON.stringify({ keys: [jwk(ec()), jwk(ec())] }), /2 private keys; import one key at a time/],
    ['an RSA-1024 key', () => pkcs8(rsa(1024)), /at least 2048 bits/],
    ['an EC P-384 key', () => pkcs8(ec('P-384')), /EC P-256 key/],
    ['an Ed448 key', () => pkcs8(generateKeyPairSync('ed448').privateKey), /Ed25519 key/],
    ['a symmetric JWK', () => '{"kty":"oct","k":"c2VjcmV0"}', /symmetric key/],
    ['an encrypted PEM', () => rsa().export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'x' }).toString(), /encrypted/],
    ['text that is no key', () => 'hello', /is not a PEM private key/],
    ['broken JSON', () => '{"kty":', /nor valid JSON/],
    ['an empty file', () => '', /is not a PEM private key/],
    ['bad header times', () => `Tollgate-Created: soon\n${ecPem()}`, /Tollgate-Created line that is not an RFC 3339 time/],
    ['binary junk', () => '\u0000\u00ff\u0001-----BEGIN \u0000', /is not a PEM private key/],
  ])('refuses %s in one line, naming the file, and writes nothing', async (_what, text, message) => {
    const f = fixture();
    const file = source(text());
    const run = await keys(f, ['import', file]);
    expectUserError(run, message);
    expect(run.stderr.startsWith(`tollgate: ${file}: `)).toBe(true);
    expect(run.stderr).not.toMatch(/BEGIN|"d":/);
    expect(keyFiles(f.keysDir)).toEqual([]);
  });

  it('refuses a file larger than any key, a missing file and a folder', async () => {
    const f = fixture();
    expectUserError(await keys(f, ['import', source('x'.repeat(1024 * 1024 + 1))]), /is larger than 1 MiB: not a key file/);
    expectUserError(await keys(f, ['import', '-'], 'x'.repeat(1024 * 1024 + 1)), /^tollgate: -: is larger than 1 MiB/);
    expectUserError(await keys(f, ['import', join(f.dir, 'missing.pem')]), /missing\.pem: cannot read: ENOENT/);
    expectUserError(await keys(f, ['import', tempDir()]), /cannot read: EISDIR/);
    expect(keyFiles(f.keysDir)).toEqual([]);
  });

  it.each([
    [['import'], /missing FILE/],
    [['import', 'a.pem', 'b.pem'], /unexpected argument "b.pem"/],
    [['import', 'a.pem', '--created', 'yesterday'], /--created must be "now" or an RFC 3339 time/],
    [['import', 'a.pem', '--signs-from', '2026-02-30T10:00:00Z'], /--signs-from must be "now" or an RFC 3339 time/],
    [['import', 'a.pem', '--signs-from', ''], /--signs-from must be/],
    [['import', 'a.pem', '--created'], /--created/],
    [['import', 'a.pem', '--force'], /unknown option '--force'/i],
    [['export'], /give exactly one of --public and --to-dir/],
    [['export', '--public', '--to-dir', 'x'], /give exactly one of --public and --to-dir/],
    [['export', '--to-dir', 'x', '--out', 'y'], /--out goes with --public/],
    [['export', '--to-dir', ''], /--to-dir needs a path/],
    [['export', '--public', 'extra'], /unexpected argument "extra"/],
  ])('tollgate keys %j: exit 1 with one line on stderr', async (args, message) => {
    expectUserError(await tollgateInProcess(['keys', ...args], { cwd: tempDir() }), message);
  });

  it('refuses a signs-from time before the creation time', async () => {
    const f = fixture();
    const run = await keys(f, ['import', source(ecPem()), '--created', '2026-11-30T10:00:00Z', '--signs-from', '2026-11-30T09:00:00Z']);
    expectUserError(run, /would sign from 2026-11-30T09:00:00\.000Z, before it was created \(2026-11-30T10:00:00\.000Z\)/);
  });
});

describe('keys export and import help', () => {
  it.each([['export'], ['import']])('keys %s --help documents both commands and their options', async (sub) => {
    const run = await tollgateInProcess(['keys', sub, '--help'], { cwd: tempDir() });
    expect([run.code, run.stderr]).toEqual([0, '']);
    for (const word of ['keys export --public', '--out FILE', '--to-dir DIR', 'keys import FILE', '--created TIME', '--signs-from TIME', 'RFC 3339', 'Kubernetes Secret']) {
      expect(run.stdout).toContain(word);
    }
  });
});

describe('keys export', () => {
  it('--public prints exactly the JWKS a running server serves; --out writes it to a file', async () => {
    const f = fixture();
    expect((await keys(f, ['import', source(ecPem())])).code).toBe(0);
    expect((await keys(f, ['rotate'])).code).toBe(0);
    const server = await startServerProcess(f.configFile);
    const served = await (await fetch(`${server.url}/.well-known/jwks.json`)).text();
    expect(await server.stop()).toBe(0);
    expect((JSON.parse(served) as { keys: unknown[] }).keys).toHaveLength(2);

    const run = await keys(f, ['export', '--public']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${served}\n`);
    expect(run.stderr).toBe('');

    const out = join(tempDir(), 'jwks.json');
    const written = await keys(f, ['export', '--public', '--out', out]);
    expect([written.code, written.stdout]).toEqual([0, '']);
    expect(readFileSync(out, 'utf8')).toBe(`${served}\n`);
    expect(written.stderr).toBe(`wrote the public keys of 2 keys to ${out}\n`);
  });

  it('--to-dir writes every key with its times (0600), and importing them elsewhere keeps every time', async () => {
    const f = fixture(', publish_before_use: 5m');
    expect((await keys(f, ['import', source(serializeKeyFile({ privateKey: ec(), created: T1, signsFrom: T2 }))])).code).toBe(0);
    // A plain PEM file of an older tollgate: its mtime is its creation time.
    writeFileSync(join(f.keysDir, 'plain.pem'), ecPem(), { mode: 0o600 });
    utimesSync(join(f.keysDir, 'plain.pem'), new Date(T1 - 60 * MIN), new Date(T1 - 60 * MIN));
    expect((await keys(f, ['rotate'])).code).toBe(0);
    const listed = async (g: Fixture) =>
      lines((await keys(g, ['list'])).stdout)
        .slice(1)
        .map((r) => r.split(/\s+/).slice(0, 5));
    const before = await listed(f);
    expect(before.map((r) => r.slice(1, 3))[2]).toEqual(['2026-11-30T09:00:00.000Z', '2026-11-30T09:05:00.000Z']);

    const out = join(tempDir(), 'moved');
    const run = await keys(f, ['export', '--to-dir', out]);
    expect(run.code, run.stderr).toBe(0);
    const kids = lines(run.stdout);
    expect(kids.sort()).toEqual(before.map((r) => r[0]).sort());
    expect(keyFiles(out)).toEqual(kids.map((k) => `${k}.pem`).sort());
    for (const name of keyFiles(out)) {
      expect(statSync(join(out, name)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(out, name), 'utf8')).toMatch(/^Tollgate-Created: .*\nTollgate-Signs-From: .*\n-----BEGIN PRIVATE KEY-----\n/);
    }
    expect(run.stderr).toMatch(/^wrote 3 keys with their times to .*moved \(mode 0600\)/);

    // Another machine, with another publish_before_use: the times come with the keys.
    const g = fixture(', publish_before_use: 1h');
    for (const name of keyFiles(out)) {
      const imported = await keys(g, ['import', join(out, name)]);
      expect(imported.code, imported.stderr).toBe(0);
    }
    expect(await listed(g)).toEqual(before);
  });

  it('refuses a folder with no keys, and a target folder it may not write', async () => {
    const f = fixture();
    expectUserError(await keys(f, ['export', '--public']), /the key directory holds no keys \(\*\.pem\); nothing to export/);
    expect((await keys(f, ['rotate'])).code).toBe(0);
    const notDir = join(f.dir, 'file');
    writeFileSync(notDir, '');
    expectUserError(await keys(f, ['export', '--to-dir', join(notDir, 'sub')]), /file\/sub: cannot write keys into it: ENOTDIR/);
    expectUserError(await keys(f, ['export', '--public', '--out', join(notDir, 'jwks.json')]), /jwks\.json: cannot write: ENOTDIR/);
  });
});
