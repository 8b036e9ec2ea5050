import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { API, client, registryYaml } from '../builders.js';
import { writeFixture, type Fixture } from '../helpers.js';
import { CLI, httpClient, startServerProcess, type ServerProcess } from '../server-process.js';

const run = promisify(execFile);
const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
let fixture: Fixture;
let server: ServerProcess;

beforeAll(async () => {
  const state = writeFixture({ clients: '' });
  fixture = writeFixture({
    config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: sqlite, path: ${join(state.dir, 'tokens.db')} }
`,
    clients: await registryYaml([
      client({ id: 'svc', secret: SVC, audiences: [API] }),
      client({ id: 'other', secret: SVC, audiences: [API] }),
      client({ id: 'rs', secret: RS, audiences: [API], introspect: true }),
    ]),
  });
  server = await startServerProcess(fixture.configFile);
});

const http = httpClient(() => server.url);
const post = http.post;
const issue = (client = 'svc') => http.issue(client, SVC);
const active = (token: string) => http.active('rs', RS, token);
const jtiOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;
const tollgate = (...args: string[]) => run(process.execPath, [CLI, ...args, '--config', fixture.configFile]);

/** Resolves once the wall clock has reached the whole second after the one `ms` falls in. */
async function untilSecondAfter(ms: number): Promise<void> {
  const next = (Math.floor(ms / 1000) + 1) * 1000;
  while (Date.now() < next) await new Promise((r) => setTimeout(r, next - Date.now()));
}

describe('operator revocation from the CLI against a running server', () => {
  it('token revoke --jti makes one token inactive at once', async () => {
    const token = await issue();
    const other = await issue();
    const { stderr } = await tollgate('token', 'revoke', '--jti', jtiOf(token));
    expect(stderr).toMatch(/revoked token/);
    expect(await active(token)).toBe(false);
    expect(await active(other)).toBe(true);
  });

  it('token revoke --client makes every earlier token of the client inactive, and later ones work', async () => {
    const [a, b, bystander] = [await issue(), await issue(), await issue('other')];
    await tollgate('token', 'revoke', '--client', 'svc');
    const revokedBy = Date.now();
    expect(await active(a)).toBe(false);
    expect(await active(b)).toBe(false);
    expect(await active(bystander)).toBe(true);
    // Tokens are stamped in whole seconds; one issued in a later second is not caught. The
    // server runs on the real clock, so the test waits for the second after the revocation's.
    await untilSecondAfter(revokedBy);
    expect(await active(await issue())).toBe(true);
  });

  it('client disable refuses the client and revokes its tokens, which stay revoked after enable', async () => {
    const token = await issue();
    await tollgate('client', 'disable', 'svc');
    // At once, without waiting for the server to re-read the registry.
    expect(await active(token)).toBe(false);
    await tollgate('client', 'enable', 'svc');
    // The server reloads the registry within seconds; poll for the re-enabled client.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await post('/oauth2/token', 'svc', SVC, { grant_type: 'client_credentials' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect(await active(token)).toBe(false);
  });

  it('refuses bad usage with one line and exit 1', async () => {
    for (const args of [['token', 'revoke'], ['token', 'revoke', '--jti', 'x', '--client', 'y'], ['token', 'revoke', '--jti', 'no-such-jti'], ['token', 'nope']]) {
      const err = await tollgate(...args).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code, args.join(' ')).toBe(1);
      expect(err!.stderr.trim().split('\n')).toHaveLength(1);
      expect(err!.stderr).toMatch(/^tollgate: /);
    }
  });
});
