import { createPrivateKey } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyId, serializeKeyFile } from '../../src/keys/key-file.js';
import { hashOf, tempDir, writeFixture, type Fixture } from '../helpers.js';
import { ecPem } from '../keys/odd-pem.js';
import { secretVolume, snapshot } from '../keys/secret-volume.js';
import { startServerProcess } from '../server-process.js';
import { expectUserError, lines, tollgate, tollgateInProcess, type CliRun } from './run-cli.js';

const MIN = 60_000;
const CONFIG = `issuer: https://auth.test
listen: { host: 127.0.0.1, port: 0 }
clients_file: ./clients.yaml
keys: { dir: ./keys, algorithm: ES256 }
store: { kind: memory }
`;
let clients = '';
beforeAll(async () => {
  clients = `clients:\n  - client_id: svc\n    secrets: [{ hash: "${await hashOf('svc-secret-0123456789abcdefghijklmnopqrst')}" }]\n    audiences: [https://api.test]\n`;
});

const keys = (f: Fixture, args: string[]): Promise<CliRun> => tollgateInProcess(['keys', ...args, '--config', f.configFile], { cwd: f.dir });
const timed = (created: number) => serializeKeyFile({ privateKey: createPrivateKey(ecPem()), created, signsFrom: created + 10 * MIN });
const kidOf = (pem: string) => keyId(createPrivateKey(pem));


/** A fixture whose keys.dir is laid out as a Kubernetes Secret volume. */
function secretFixture(files: Record<string, string>) {
  const f = writeFixture({ config: CONFIG, clients });
  const volume = secretVolume(files, f.keysDir);
  return { f, volume };
}

describe('a key folder that is a Kubernetes Secret volume', () => {
  it('rotate, prune and import refuse it in one line and write nothing; list and prune --dry-run read it', async () => {
    const old = Date.now() - 100 * 24 * 60 * MIN;
    const { f } = secretFixture({ 'a.pem': timed(old), 'b.pem': timed(old + MIN), 'plain.pem': ecPem() });
    const before = snapshot(f.keysDir);
    const why = 'it is a Kubernetes Secret volume \\(it holds \\.\\.data\\), which tollgate never writes into; change the Secret instead\n$';
    expectUserError(await keys(f, ['rotate']), new RegExp(`^tollgate: ${f.keysDir}: cannot write a new key into the key directory: ${why}`));
    expectUserError(await keys(f, ['prune']), new RegExp(`^tollgate: ${f.keysDir}: cannot remove keys from the key directory: ${why}`));
    const source = join(tempDir(), 'new.pem');
    writeFileSync(source, ecPem());
    expectUserError(await keys(f, ['import', source]), new RegExp(`^tollgate: ${f.keysDir}: cannot import a key into the key directory: ${why}`));

    const dry = await keys(f, ['prune', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(lines(dry.stdout)).toHaveLength(1);

    // list says which files still take their times from their mtime, and what to do about it.
    const list = await keys(f, ['list']);
    expect(list.code).toBe(0);
    expect(lines(list.stdout)).toHaveLength(4);
    expect(lines(list.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^warning: ${f.keysDir}/plain\\.pem: has no Tollgate-Created line, so its mtime \\(.*\\) counts as its creation time .*: the folder is a Kubernetes Secret volume$`)),
      expect.stringMatching(/^warning: to give those keys times that last, write them elsewhere with `tollgate keys export --to-dir DIR`/),
    ]);
    expect(snapshot(f.keysDir)).toEqual(before);

    // The way out: export the keys with their times, and put those files in the Secret.
    const out = join(tempDir(), 'stamped');
    expect((await keys(f, ['export', '--to-dir', out])).code).toBe(0);
    expect(snapshot(f.keysDir)).toEqual(before);
    const { f: g } = secretFixture(Object.fromEntries(readdirSync(out).map((n) => [n, readFileSync(join(out, n), 'utf8')])));
    const relisted = await keys(g, ['list']);
    expect(relisted.stderr).toBe('');
    const rows = (run: CliRun) => lines(run.stdout).slice(1).map((r) => r.split(/\s+/).slice(0, 5));
    expect(rows(relisted)).toEqual(rows(list));
  });

  it('a running server follows a Secret update that keeps every name, and one that adds and removes keys, and warns once of a plain file', async () => {
    const [a1, plain] = [timed(Date.now() - 60 * MIN), ecPem()];
    const { f, volume } = secretFixture({ 'a.pem': a1, 'plain.pem': plain });
    const before = snapshot(f.keysDir);
    const server = await startServerProcess(f.configFile);
    const served = async () => ((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
    const until = async (kids: string[]) => {
      const deadline = Date.now() + 15_000;
      while (JSON.stringify(await served()) !== JSON.stringify(kids.sort())) {
        expect(Date.now(), `the served keys did not become ${kids}`).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    expect(await served()).toEqual([await kidOf(a1), await kidOf(plain)].sort());
    await server.waitForOutput(/"event":"keys.untimed".*plain\.pem: has no Tollgate-Created line/);
    expect(snapshot(f.keysDir)).toEqual(before);

    // The kubelet's swap: every name stays, a.pem holds another key; plain.pem keeps its mtime.
    const a2 = timed(Date.now() - 30 * MIN);
    volume.update({ 'a.pem': a2, 'plain.pem': plain }, statSync(join(f.keysDir, 'plain.pem')).mtime);
    await until([await kidOf(a2), await kidOf(plain)]);

    const b = timed(Date.now() - 20 * MIN);
    volume.update({ 'b.pem': b, 'plain.pem': plain }, statSync(join(f.keysDir, 'plain.pem')).mtime);
    await until([await kidOf(b), await kidOf(plain)]);
    await server.waitForOutput(/"event":"keys.reloaded"[^\n]*\n(.|\n)*"event":"keys.reloaded"/);
    expect(server.stdout().match(/"event":"keys.untimed"/g)).toHaveLength(1);
    expect(readdirSync(f.keysDir).filter((n) => !n.startsWith('..')).sort()).toEqual(['b.pem', 'plain.pem']);
    expect(await server.stop()).toBe(0);
  });
});

describe('a key folder tollgate may not write', () => {
  // root writes anywhere a chmod forbids, so a root test run runs tollgate as nobody.
  const user = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : undefined;

  it('prune and import refuse it in one line, naming the uid, and change nothing; list still reads it', async () => {
    const f = writeFixture({ config: CONFIG, clients });
    chmodSync(f.dir, 0o755);
    mkdirSync(f.keysDir);
    const old = Date.now() - 100 * 24 * 60 * MIN;
    writeFileSync(join(f.keysDir, 'a.pem'), timed(old), { mode: 0o600 });
    writeFileSync(join(f.keysDir, 'b.pem'), timed(old + MIN), { mode: 0o600 });
    const source = join(tempDir(), 'new.pem');
    writeFileSync(source, ecPem(), { mode: 0o644 });
    chmodSync(join(source, '..'), 0o755);
    if (user !== undefined) for (const p of [f.keysDir, join(f.keysDir, 'a.pem'), join(f.keysDir, 'b.pem')]) chownSync(p, user.uid, user.gid);
    chmodSync(f.keysDir, 0o555);
    const before = snapshot(f.keysDir);
    const run = (args: string[]) => tollgate(['keys', ...args, '--config', f.configFile], { cwd: f.dir, ...(user && { user }) });
    try {
      expectUserError(await run(['prune']), new RegExp(`^tollgate: ${f.keysDir}: cannot remove keys from the key directory: permission denied: tollgate runs as uid \\d+ `));
      expectUserError(await run(['import', source]), new RegExp(`^tollgate: ${f.keysDir}: cannot import a key into the key directory: permission denied: tollgate runs as uid \\d+ `));
      const list = await run(['list']);
      expect(list.code, list.stderr).toBe(0);
      expect(lines(list.stdout)).toHaveLength(3);
      expect(snapshot(f.keysDir)).toEqual(before);
    } finally {
      chmodSync(f.keysDir, 0o755);
    }
  });
});
