import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createLogger, serializeError, serializeRequest } from '../../src/server/log.js';
import { API, client, introspect, registryYaml, revoke, tokenRequest } from '../builders.js';
import { basic, buildTestApp, LogCapture } from '../helpers.js';
import { rawRequest } from './raw-socket.js';

// At `trace`, Fastify's "client error" line carried the raw request bytes as a byte array that
// redaction could not see: Authorization headers, secrets, tokens. Here requests carrying
// credentials, well-formed and malformed, go to a real server at every level, and every field of
// every line written is decoded (byte arrays, base64, percent-encoding) and searched.

const SECRET = 'logsecret-0123456789abcdefghijklmnopqrstuv';
const WRONG = 'wrongsecret-0123456789abcdefghijklmnopqrst';
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** Every string in a parsed log line: keys, values, numbers, and byte arrays read as text. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  if (Array.isArray(value)) {
    const out = value.flatMap(strings);
    if (value.length > 0 && value.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255)) {
      out.push(Buffer.from(value as number[]).toString('latin1'));
    }
    return out;
  }
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

/** The text, and what it decodes to as percent-encoding and as base64(url), twice over. */
function decodings(text: string, depth = 0): string[] {
  const out = [text];
  if (depth >= 2) return out;
  try {
    const unescaped = decodeURIComponent(text.replace(/\+/g, ' '));
    if (unescaped !== text) out.push(...decodings(unescaped, depth + 1));
  } catch {
    // Not percent-encoding.
  }
  for (const piece of new Set(text.split(/[^A-Za-z0-9+/=_-]+/))) {
    if (piece.length < 8) continue;
    for (const encoding of ['base64', 'base64url'] as const) out.push(...decodings(Buffer.from(piece, encoding).toString('latin1'), depth + 1));
  }
  return out;
}

async function serverAt(level: (typeof LEVELS)[number]) {
  const logs = new LogCapture();
  const t = await buildTestApp({
    clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API], introspect: true })]),
    deps: { logger: createLogger(level, logs), deadlines: { headersMs: 500, requestMs: 500, checkIntervalMs: 100 } },
  });
  const port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
  return { ...t, logs, port };
}

describe('no log line at any level holds a secret or a token', () => {
  it.each(LEVELS)('at %s', async (level) => {
    const t = await serverAt(level);
    const issued = await tokenRequest(t.app, { client: 'svc', secret: SECRET });
    expect(issued.statusCode).toBe(200);
    const token = issued.json().access_token as string;
    const auth = basic('svc', SECRET);
    const wrongAuth = basic('svc', WRONG);
    const post = (path: string, body: string, headers = `Authorization: ${auth}\r\n`) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

    const requests = [
      // Well-formed, succeeding and failing.
      post('/oauth2/token', 'grant_type=client_credentials'),
      post('/oauth2/token', `grant_type=client_credentials&client_id=svc&client_secret=${WRONG}`, ''),
      post('/oauth2/token', 'grant_type=client_credentials', `Authorization: ${wrongAuth}\r\n`),
      post('/oauth2/introspect', `token=${token}`),
      post(`/oauth2/introspect?token=${token}&client_secret=${SECRET}`, `token=${token}`),
      post('/oauth2/revoke', `token=${token}`, `Authorization: ${wrongAuth}\r\n`),
      post('/oauth2/token', `grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=${token}`, ''),
      post('/oauth2/token', `client_secret=${SECRET}&client_secret=${SECRET}`, ''),
      post('/oauth2/token', `${'x'.repeat(17_000)}&client_secret=${SECRET}`),
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{"client_secret":"${SECRET.slice(0, 10)}`,
      // Malformed: each reaches Node's clientError, Fastify's bad-URL path or a deadline.
      `FOO /oauth2/token?client_secret=${SECRET} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\ntoken=${token}`,
      `POST /oauth2/introspect HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\ntoken=${token}\r\n`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Token: ${token}\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nAuthorization: ${auth}\r\n\r\n`,
      `GET /oauth2/%E0%A4%A?client_secret=${SECRET}&token=${token} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`,
      `GET /oauth2/token HTTP/1.1 ${SECRET}\r\nHost: x\r\n\r\n`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\nAuthorization: ${auth}\r\n\r\nab`,
      `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nclient_secret=${SECRET}&token=${token}`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Unfinished: ${token}`,
    ];
    const answers = await Promise.all(requests.map((r) => rawRequest(t.port, r)));
    for (const answer of answers) expect(answer.status, answer.raw.slice(0, 200)).toBeGreaterThan(0);
    await t.app.close();

    const needles = [SECRET, WRONG, token, token.split('.')[2]!, auth.slice('Basic '.length), wrongAuth.slice('Basic '.length)];
    for (const line of t.logs.lines) {
      const found = strings(JSON.parse(line))
        .flatMap((s) => decodings(s))
        .flatMap((s) => needles.filter((n) => s.includes(n)));
      expect(found, line.slice(0, 300)).toEqual([]);
    }
    // Not vacuous: the malformed requests were logged wherever the level lets info through.
    if (level === 'trace' || level === 'debug' || level === 'info') {
      const details = t.logs.events('request.rejected').map((e) => e.detail);
      expect(details).toEqual(expect.arrayContaining(['HPE_INVALID_METHOD', 'HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT', 'FST_ERR_BAD_URL', 'no_host']));
    }
  });
});

describe('a parser error logged by accident', () => {
  it('loses its raw request bytes', () => {
    const logs = new LogCapture();
    const err = Object.assign(new Error('Parse Error: Invalid method encountered'), {
      code: 'HPE_INVALID_METHOD',
      rawPacket: Buffer.from(`FOO / HTTP/1.1\r\nAuthorization: ${basic('svc', SECRET)}\r\n\r\n`),
    });
    const logger = createLogger('trace', logs);
    logger.trace({ err }, 'client error');
    logger.trace(err);
    expect(logs.lines).toHaveLength(2);
    for (const line of logs.lines) {
      expect(strings(JSON.parse(line)).flatMap((s) => decodings(s)).some((s) => s.includes(SECRET))).toBe(false);
      expect(line).toContain('HPE_INVALID_METHOD');
    }
  });
});

/** Every needle found in any decoded field of any line. */
function secretsIn(lines: readonly string[], needles: readonly string[]): string[] {
  return lines.flatMap((line) =>
    strings(JSON.parse(line))
      .flatMap((s) => decodings(s))
      .flatMap((s) => needles.filter((n) => s.includes(n)).map((n) => `${n.slice(0, 12)}… in ${line.slice(0, 200)}`)),
  );
}

describe('the audit lines of a working server hold no secret, at debug and trace, one line per introspection', () => {
  it.each(['debug', 'trace'] as const)('at %s', async (level) => {
    const logs = new LogCapture();
    const t = await buildTestApp({
      clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API], introspect: true })]),
      config: 'issuer: https://auth.test\nclients_file: ./clients.yaml\nkeys: { dir: ./keys }\nstore: { kind: memory }\nlog: { introspections: each }\n',
      deps: { logger: createLogger(level, logs) },
    });
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const proof = await new SignJWT({ htm: 'POST', htu: 'https://auth.test/oauth2/token', iat: Math.floor(t.clock.ms / 1000), jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    const viaBasic = await tokenRequest(t.app, { client: 'svc', secret: SECRET });
    const viaBody = await tokenRequest(t.app, { client: 'svc', secret: SECRET, auth: 'post' });
    const bound = await tokenRequest(t.app, { client: 'svc', secret: SECRET, headers: { dpop: proof } });
    for (const r of [viaBasic, viaBody, bound]) expect(r.statusCode, r.body).toBe(200);
    expect(bound.json().token_type).toBe('DPoP');
    const tokens = [viaBasic, viaBody, bound].map((r) => r.json().access_token as string);
    // An assertion that fails, carrying a token as its bytes: neither may be echoed.
    const assertion = tokens[0]!;
    const refused = await tokenRequest(t.app, {
      params: { client_id: 'svc', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion },
    });
    expect(refused.statusCode).toBe(401);
    for (const token of tokens) expect((await introspect(t.app, token, { client: 'svc', secret: SECRET })).json()).toMatchObject({ active: true });
    expect((await revoke(t.app, tokens[1]!, { client: 'svc', secret: SECRET })).statusCode).toBe(200);
    expect((await introspect(t.app, tokens[1]!, { client: 'svc', secret: SECRET, auth: 'post' })).json()).toEqual({ active: false });
    await t.app.close();

    // Not vacuous: each kind of line was written.
    expect(logs.events('token.issued')).toHaveLength(3);
    expect(logs.events('token.introspected')).toHaveLength(4);
    expect(logs.events('token.revoked')).toHaveLength(1);
    expect(logs.events('client.auth_failed')).toHaveLength(1);
    expect(logs.lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'request')).toBe(true);
    const needles = [SECRET, proof, proof.split('.')[2]!, ...tokens, ...tokens.map((tk) => tk.split('.')[2]!), basic('svc', SECRET).slice('Basic '.length)];
    expect(secretsIn(logs.lines, needles)).toEqual([]);
  });
});

describe('the serializers', () => {
  it('keep a request to its method, its path without the query, and its id', () => {
    const req = { method: 'POST', url: `/oauth2/token?client_secret=${SECRET}`, id: 'req-3', headers: { authorization: basic('svc', SECRET), cookie: SECRET, dpop: SECRET }, body: { client_secret: SECRET } };
    expect(serializeRequest(req)).toEqual({ method: 'POST', path: '/oauth2/token', id: 'req-3' });
    const logs = new LogCapture();
    createLogger('trace', logs).info({ req, request: req }, 'a request logged by accident');
    expect(logs.lines).toHaveLength(1);
    expect(secretsIn(logs.lines, [SECRET])).toEqual([]);
  });

  it('keep an error to its type, message, stack, code and causes', () => {
    const cause = Object.assign(new Error('inner'), { code: 'ECONNREFUSED', config: { password: SECRET } });
    const err = Object.assign(new TypeError('outer', { cause }), { code: 'E_OUTER', headers: { authorization: SECRET }, rawPacket: Buffer.from(SECRET) });
    expect(serializeError(err)).toEqual({ type: 'TypeError', message: 'outer', stack: err.stack, code: 'E_OUTER', cause: { type: 'Error', message: 'inner', stack: cause.stack, code: 'ECONNREFUSED' } });
    expect(serializeError('plain text')).toBe('plain text');
    expect(serializeError({ secret: SECRET })).toEqual({ type: 'non-error object' });
  });
});
