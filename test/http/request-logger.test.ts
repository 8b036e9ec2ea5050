import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { lazyRequestLogger } from '../../src/http/request-logger.js';
import { createLogger } from '../../src/server/log.js';
import { API, client, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp, LogCapture } from '../helpers.js';

const SECRET = 'request-logger-secret-0123456789abcdefghij';

async function app(level?: string) {
  const logs = new LogCapture();
  const t = await buildTestApp({
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
    ...(level === undefined ? {} : { deps: { logger: createLogger(level, logs) } }),
  });
  return { ...t, logs: level === undefined ? t.logs : logs };
}

const token = (t: Awaited<ReturnType<typeof app>>, secret: string) =>
  tokenRequest(t.app, { client: 'svc', secret });

describe('request loggers', () => {
  it('tag every line of one request with the same reqId, and each request with its own', async () => {
    // At debug, where the access lines are written.
    const t = await app('debug');
    expect((await token(t, SECRET)).statusCode).toBe(200);
    expect((await token(t, SECRET)).statusCode).toBe(200);
    const lines = t.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const issued = lines.filter((l) => l.event === 'token.issued');
    const access = lines.filter((l) => l.msg === 'request');
    expect(issued).toHaveLength(2);
    expect(access).toHaveLength(2);
    expect(issued.map((l) => l.reqId)).toEqual(access.map((l) => l.reqId));
    expect(issued[0]!.reqId).not.toBe(issued[1]!.reqId);
    expect(issued[0]).toMatchObject({ service: 'tollgate', level: 'info' });
    expect(access[0]).toMatchObject({ level: 'debug', method: 'POST', path: '/oauth2/token', status: 200 });
  });

  it('write only the audit line of a token at info: no access line, no per-request logger', async () => {
    const t = await app('info');
    expect((await token(t, SECRET)).statusCode).toBe(200);
    const lines = t.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ level: 'info', event: 'token.issued', client_id: 'svc', reqId: expect.any(String) })]);
  });

  it('write nothing below the configured level, and still write what is above it with the reqId', async () => {
    const t = await app('warn');
    expect((await token(t, SECRET)).statusCode).toBe(200);
    expect(t.logs.lines).toEqual([]);
    expect((await token(t, 'wrong-secret')).statusCode).toBe(401);
    const failures = t.logs.events('client.auth_failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ level: 'warn', reason: 'wrong_secret', reqId: expect.any(String) });
    expect(t.logs.text).not.toContain(SECRET);
    expect(t.logs.text).not.toContain('wrong-secret');
  });

  it('follow a level set on the request logger itself, and make children that keep the bindings', () => {
    const logs = new LogCapture();
    const parent = pino({ level: 'warn', base: null, timestamp: false }, logs);
    const log = lazyRequestLogger(parent, { reqId: 'req-7' }, {});
    log.info('hidden');
    expect(logs.lines).toEqual([]);
    expect(log.level).toBe('warn');
    log.level = 'debug';
    log.debug('shown');
    log.child({ part: 'x' }).debug('from a child');
    // The parent's own level is untouched.
    expect(parent.level).toBe('warn');
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      { level: 20, reqId: 'req-7', msg: 'shown' },
      { level: 20, reqId: 'req-7', part: 'x', msg: 'from a child' },
    ]);
  });

  it('honour a level given for one route from the first line', () => {
    const logs = new LogCapture();
    const parent = pino({ level: 'warn', base: null, timestamp: false }, logs);
    lazyRequestLogger(parent, { reqId: 'req-8' }, { level: 'debug' }).debug('route level');
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([{ level: 20, reqId: 'req-8', msg: 'route level' }]);
  });
});
