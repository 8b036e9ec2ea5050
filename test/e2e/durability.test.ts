import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeFixture, type Fixture } from '../helpers.js';
import { httpClient, serviceAndResourceServer, startServerProcess } from '../server-process.js';

// The SQLite store keeps issued-token state across restarts, and an acknowledged revocation
// across a SIGKILL that follows it at once.

const SVC = 'svc-secret-0123456789abcdefghijklmnopqrstu';
const RS = 'rs-secret-0123456789abcdefghijklmnopqrstuv';
let fixture: Fixture;

beforeAll(async () => {
  const base = writeFixture({ clients: '' });
  fixture = writeFixture({
    config: `issuer: http://127.0.0.1
listen: { host: 127.0.0.1, port: 0 }
keys: { dir: ./keys }
store: { kind: sqlite, path: ${join(base.dir, 'tokens.db')} }
`,
    clients: await serviceAndResourceServer(SVC, RS),
  });
});

const http = (url: string) => httpClient(() => url);
const issue = (url: string) => http(url).issue('svc', SVC);
const active = (url: string, token: string) => http(url).active('rs', RS, token);
const post = (url: string, path: string, user: string, pass: string, params: Record<string, string>) => http(url).post(path, user, pass, params);

describe('the SQLite store across process lifetimes', () => {
  it('keeps revoked tokens inactive and good ones active after a restart', async () => {
    const first = await startServerProcess(fixture.configFile);
    const good = await issue(first.url);
    const revoked = await issue(first.url);
    expect((await post(first.url, '/oauth2/revoke', 'svc', SVC, { token: revoked })).status).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0);

    const second = await startServerProcess(fixture.configFile);
    expect(await active(second.url, good)).toBe(true);
    expect(await active(second.url, revoked)).toBe(false);
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('loses no acknowledged revocation when the server is SIGKILLed right after answering', async () => {
    const first = await startServerProcess(fixture.configFile);
    const tokens = await Promise.all([issue(first.url), issue(first.url), issue(first.url)]);
    for (const token of tokens) expect((await post(first.url, '/oauth2/revoke', 'svc', SVC, { token })).status).toBe(200);
    // No grace: the kill follows the last 200 at once.
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');

    const second = await startServerProcess(fixture.configFile);
    for (const token of tokens) expect(await active(second.url, token)).toBe(false);
    await second.stop('SIGTERM');
  });

  it('serves a resource server using a real client library for introspection and revocation', async () => {
    const server = await startServerProcess(fixture.configFile);
    const as: oauth.AuthorizationServer = {
      issuer: server.url,
      token_endpoint: `${server.url}/oauth2/token`,
      introspection_endpoint: `${server.url}/oauth2/introspect`,
      revocation_endpoint: `${server.url}/oauth2/revoke`,
    };
    const insecure = { [oauth.allowInsecureRequests]: true };
    const token = await issue(server.url);

    const rs: oauth.Client = { client_id: 'rs' };
    const intro = await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(RS), token, insecure);
    const result = await oauth.processIntrospectionResponse(as, rs, intro);
    expect(result).toMatchObject({ active: true, client_id: 'svc', token_type: 'Bearer', aud: 'https://api.test' });

    const svc: oauth.Client = { client_id: 'svc' };
    const revocation = await oauth.revocationRequest(as, svc, oauth.ClientSecretPost(SVC), token, insecure);
    await oauth.processRevocationResponse(revocation);

    const after = await oauth.processIntrospectionResponse(as, rs, await oauth.introspectionRequest(as, rs, oauth.ClientSecretBasic(RS), token, insecure));
    expect(after.active).toBe(false);
    await server.stop('SIGTERM');
  });
});
