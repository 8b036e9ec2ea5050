import { chmodSync, mkdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashOf, writeFixture, type Fixture } from '../helpers.js';
import { expectUserError, tollgate, type CliRun } from './run-cli.js';

// The Docker guide's flow once wrote the registry with the caller's uid and mode 0600, and the
// image's uid 1000 could not read it: the server said only "cannot read: EACCES". These files are
// made unreadable for real; root reads anything, so a root test run runs tollgate as nobody.
const user = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : undefined;
const uid = user?.uid ?? process.getuid?.();

let HASH = '';
beforeAll(async () => {
  HASH = await hashOf('svc-secret-0123456789abcdefghijklmnopqrst');
});

const CONFIG = `issuer: https://auth.test
clients_file: ./clients.yaml
keys: { dir: ./keys }
store: { kind: memory }
`;
const registry = () => `clients:\n  - client_id: svc\n    secrets: [{ hash: "${HASH}" }]\n    audiences: [https://api.test]\n`;

/** A fixture whose folder tollgate may enter whoever it runs as. */
function fixture(config = CONFIG): Fixture {
  const f = writeFixture({ config, clients: registry() });
  chmodSync(f.dir, 0o755);
  return f;
}

function run(f: Fixture, args: string[]): Promise<CliRun> {
  return tollgate([...args, '--config', f.configFile], { cwd: f.dir, ...(user && { user }) });
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const denied = (path: string, action: string, prefix = 'tollgate: ') =>
  new RegExp(`^${prefix}${esc(path)}: .*permission denied: tollgate runs as uid ${uid} \\(gid \\d+\\) and cannot ${action} it; make it .* by that user.*docs/guides/docker\\.md`);

describe.concurrent('a file tollgate may not use', () => {
  it('serve names the registry it cannot read, the uid it runs as and a hint, in one line', async () => {
    const f = fixture();
    chmodSync(f.clientsFile, 0o000);
    const result = await run(f, ['serve']);
    chmodSync(f.clientsFile, 0o644);
    expectUserError(result, denied(f.clientsFile, 'read'));
    expect(result.stderr).not.toContain('EACCES');
  });

  it('config check names the config it cannot read', async () => {
    const f = fixture();
    chmodSync(f.configFile, 0o000);
    const result = await run(f, ['config', 'check']);
    expect(result.code).toBe(1);
    chmodSync(f.configFile, 0o644);
    expect(result.stderr).toMatch(denied(f.configFile, 'read', ''));
  });

  it('config check names the key folder it cannot read', async () => {
    const f = fixture();
    mkdirSync(f.keysDir);
    chmodSync(f.keysDir, 0o000);
    const result = await run(f, ['config', 'check']);
    chmodSync(f.keysDir, 0o755);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^${esc(f.keysDir)}: cannot read the key directory: permission denied: tollgate runs as uid ${uid} `));
  });

  it('serve names the key folder it cannot write its first key into', async () => {
    const f = fixture();
    // An empty folder that exists, like a bind mount made by another user: readable, not writable.
    mkdirSync(f.keysDir);
    chmodSync(f.keysDir, 0o555);
    const result = await run(f, ['serve']);
    chmodSync(f.keysDir, 0o755);
    expectUserError(result, new RegExp(`${esc(f.keysDir)}: cannot write a new key into the key directory: permission denied: tollgate runs as uid ${uid} .* cannot write it; make it .*writable by that user`));
  });
});
