import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { Audit, type Repeat } from '../../src/http/audit.js';
import { createLogger } from '../../src/server/log.js';
import { API, client, introspect, registryYaml, revoke, tokenRequest } from '../builders.js';
import { buildTestApp, LogCapture, TestClock } from '../helpers.js';

const SECRET = 'audit-secret-0123456789abcdefghijklmnopqrs';
const REQ = { reqId: 'req-1', ip: '10.0.0.7' };

/** A Repeat the test drives: tick() runs what would run every interval. */
class ManualRepeat {
  intervals: number[] = [];
  running = 0;
  #tick: (() => void) | undefined;
  readonly repeat: Repeat = (ms, tick) => {
    this.intervals.push(ms);
    this.running += 1;
    this.#tick = tick;
    return () => {
      this.running -= 1;
      this.#tick = undefined;
    };
  };
  tick(): void {
    this.#tick?.();
  }
}

function audit(introspections: 'summary' | 'each', level = 'info') {
  const logs = new LogCapture();
  const clock = new TestClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const timer = new ManualRepeat();
  const a = new Audit(createLogger(level, logs), { introspections, summaryInterval: 60, clock, repeat: timer.repeat });
  return { audit: a, logs, clock, timer };
}

describe('introspection summaries', () => {
  it('count per calling client, and write one line per client each interval', () => {
    const { audit: a, logs, clock, timer } = audit('summary');
    a.introspected(REQ, 'rs-1', 'jti-1', true, undefined);
    a.introspected(REQ, 'rs-1', 'jti-2', true, undefined);
    a.introspected(REQ, 'rs-1', 'jti-3', false, 'expired');
    a.introspected(REQ, 'rs-1', undefined, false, 'malformed');
    a.introspected(REQ, 'rs-2', 'jti-1', false, 'revoked');
    a.introspectionFailed('rs-2');
    // Nothing is written per introspection, and one timer runs, every 60 s.
    expect(logs.lines).toEqual([]);
    expect(timer.intervals).toEqual([60_000]);

    clock.advance(60);
    timer.tick();
    expect(logs.events('introspection.summary')).toEqual([
      expect.objectContaining({
        level: 'info',
        client_id: 'rs-1',
        active: 2,
        inactive: 2,
        errors: 0,
        reasons: { expired: 1, malformed: 1 },
        from: '2026-01-01T12:00:00.000Z',
        to: '2026-01-01T12:01:00.000Z',
        msg: 'introspections',
      }),
      expect.objectContaining({ client_id: 'rs-2', active: 0, inactive: 1, errors: 1, reasons: { revoked: 1 } }),
    ]);
  });

  it('start over after each summary, write nothing for a quiet interval, and stop the timer until the next introspection', () => {
    const { audit: a, logs, clock, timer } = audit('summary');
    a.introspected(REQ, 'rs-1', 'jti-1', true, undefined);
    clock.advance(60);
    timer.tick();
    expect(logs.events('introspection.summary')).toHaveLength(1);
    clock.advance(60);
    timer.tick();
    // The quiet minute wrote nothing and stopped the timer.
    expect(logs.events('introspection.summary')).toHaveLength(1);
    expect(timer.running).toBe(0);

    clock.advance(30);
    a.introspected(REQ, 'rs-1', 'jti-2', false, 'unknown');
    expect(timer.running).toBe(1);
    clock.advance(60);
    timer.tick();
    expect(logs.events('introspection.summary').at(-1)).toMatchObject({
      client_id: 'rs-1',
      active: 0,
      inactive: 1,
      reasons: { unknown: 1 },
      // From the first introspection after the quiet minute.
      from: '2026-01-01T12:02:30.000Z',
      to: '2026-01-01T12:03:30.000Z',
    });
  });

  it('write what is counted on close, and stop the timer', () => {
    const { audit: a, logs, timer } = audit('summary');
    a.introspected(REQ, 'rs-1', 'jti-1', true, undefined);
    a.close();
    expect(logs.events('introspection.summary')).toEqual([expect.objectContaining({ client_id: 'rs-1', active: 1 })]);
    expect(timer.running).toBe(0);
    a.close();
    expect(logs.events('introspection.summary')).toHaveLength(1);
  });
});

describe('log.introspections: each', () => {
  it('writes one line per introspection with the caller, the jti, the answer and the reason', () => {
    const { audit: a, logs, timer } = audit('each');
    a.introspected(REQ, 'rs-1', 'jti-1', true, undefined);
    a.introspected(REQ, 'rs-1', 'jti-2', false, 'revoked');
    a.introspectionFailed('rs-1');
    a.close();
    expect(logs.events('token.introspected')).toEqual([
      expect.objectContaining({ level: 'info', reqId: 'req-1', client_id: 'rs-1', jti: 'jti-1', active: true, ip: '10.0.0.7' }),
      expect.objectContaining({ client_id: 'rs-1', jti: 'jti-2', active: false, reason: 'revoked' }),
    ]);
    expect(logs.events('introspection.summary')).toEqual([]);
    expect(timer.intervals).toEqual([]);
  });
});

describe('token audit lines', () => {
  it('carry what an issuance is traced by, with the federated subject when there is one', () => {
    const { audit: a, logs } = audit('summary');
    const issued = { clientId: 'svc', scope: 'read', aud: ['https://api.test'], jti: 'jti-9', exp: 1_767_272_400, tokenType: 'DPoP' };
    a.tokenIssued(REQ, issued);
    a.tokenIssued(REQ, { ...issued, federated: { issuer: 'github', subject: 'repo:acme/app:ref:refs/heads/main' } });
    a.tokenRevoked(REQ, 'svc', 'jti-9');
    a.revokeIgnored(REQ, 'svc', 'unknown');
    const [plain, federated] = logs.events('token.issued');
    expect(plain).toEqual(
      expect.objectContaining({ level: 'info', reqId: 'req-1', client_id: 'svc', scope: 'read', aud: ['https://api.test'], jti: 'jti-9', exp: 1_767_272_400, token_type: 'DPoP', ip: '10.0.0.7' }),
    );
    expect(plain).not.toHaveProperty('federated_issuer');
    expect(federated).toMatchObject({ federated_issuer: 'github', federated_subject: 'repo:acme/app:ref:refs/heads/main' });
    expect(logs.events('token.revoked')).toEqual([expect.objectContaining({ client_id: 'svc', jti: 'jti-9', reqId: 'req-1' })]);
    expect(logs.events('token.revoke_ignored')).toEqual([expect.objectContaining({ client_id: 'svc', reason: 'unknown' })]);
  });

  it('are not written below info, and introspections are not even counted', () => {
    const { audit: a, logs, timer } = audit('summary', 'warn');
    a.tokenIssued(REQ, { clientId: 'svc', scope: undefined, aud: 'x', jti: 'j', exp: 1, tokenType: 'Bearer' });
    a.introspected(REQ, 'rs', 'j', true, undefined);
    a.introspectionFailed('rs');
    expect(timer.intervals).toEqual([]);
    a.close();
    expect(logs.lines).toEqual([]);
  });
});

describe('audit lines from a running server', () => {
  const clients = () => registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API], introspect: true })]);

  it('summarise introspections by default, and write the summary when the server stops', async () => {
    const t = await buildTestApp({ clients: await clients() });
    const token = (await tokenRequest(t.app, { client: 'svc', secret: SECRET })).json().access_token as string;
    expect((await introspect(t.app, token, { client: 'svc', secret: SECRET })).json()).toMatchObject({ active: true });
    expect((await introspect(t.app, `${token}x`, { client: 'svc', secret: SECRET })).json()).toEqual({ active: false });
    expect(t.logs.events('token.introspected')).toEqual([]);
    expect(t.logs.events('token.issued')).toEqual([expect.objectContaining({ client_id: 'svc', jti: decodeJwt(token).jti, token_type: 'Bearer', exp: decodeJwt(token).exp })]);
    await t.app.close();
    expect(t.logs.events('introspection.summary')).toEqual([
      expect.objectContaining({ client_id: 'svc', active: 1, inactive: 1, errors: 0, reasons: { digest_mismatch: 1 } }),
    ]);
  });

  it('write one line per introspection with log.introspections: each, and one per revocation', async () => {
    const t = await buildTestApp({
      clients: await clients(),
      config: 'issuer: https://auth.test\nclients_file: ./clients.yaml\nkeys: { dir: ./keys }\nstore: { kind: memory }\nlog: { introspections: each }\n',
    });
    const token = (await tokenRequest(t.app, { client: 'svc', secret: SECRET })).json().access_token as string;
    const { jti } = decodeJwt(token);
    await introspect(t.app, token, { client: 'svc', secret: SECRET });
    expect((await revoke(t.app, token, { client: 'svc', secret: SECRET })).statusCode).toBe(200);
    await introspect(t.app, token, { client: 'svc', secret: SECRET });
    expect(t.logs.events('token.introspected')).toEqual([
      expect.objectContaining({ client_id: 'svc', jti, active: true, reqId: expect.any(String) }),
      expect.objectContaining({ client_id: 'svc', jti, active: false, reason: 'revoked' }),
    ]);
    expect(t.logs.events('token.revoked')).toEqual([expect.objectContaining({ client_id: 'svc', jti })]);
    await t.app.close();
    expect(t.logs.events('introspection.summary')).toEqual([]);
  });
});
