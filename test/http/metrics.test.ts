import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/crypto/limiter.js';
import { SecretVerifier } from '../../src/crypto/secret-verifier.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { API, client, registryYaml, tokenRequest } from '../builders.js';
import { buildTestApp } from '../helpers.js';

const SECRET = 'metrics-secret-0123456789abcdefghijklmnop';

describe('GET /metrics', () => {
  it('counts requests by endpoint and status, tokens by client, failures by reason, in Prometheus text', async () => {
    const t = await buildTestApp({
      clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
    });
    const ask = (secret: string) =>
      tokenRequest(t.app, { client: 'svc', secret });
    expect((await ask(SECRET)).statusCode).toBe(200);
    expect((await ask(SECRET)).statusCode).toBe(200);
    expect((await ask('wrong')).statusCode).toBe(401);
    await t.app.inject({ method: 'GET', url: '/no/such/path?secret=x' });

    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers['cache-control']).toBe('no-store');
    const text = res.body;
    expect(text).toMatch(/^tollgate_http_requests_total\{endpoint="\/oauth2\/token",status="200"\} 2$/m);
    expect(text).toMatch(/^tollgate_http_requests_total\{endpoint="\/oauth2\/token",status="401"\} 1$/m);
    expect(text).toMatch(/^tollgate_http_requests_total\{endpoint="unmatched",status="404"\} 1$/m);
    expect(text).toMatch(/^tollgate_tokens_issued_total\{client_id="svc"\} 2$/m);
    expect(text).toMatch(/^tollgate_client_auth_failures_total\{reason="wrong_secret"\} 1$/m);
    // One argon2 run for the first success (the second came from the cache), one for the failure.
    expect(text).toMatch(/^tollgate_argon2_verify_duration_seconds_count 2$/m);
    expect(text).toMatch(/^tollgate_store_operation_duration_seconds_count\{operation="record",outcome="ok"\} 2$/m);
    expect(text).toMatch(/^tollgate_http_request_duration_seconds_bucket\{le="\+Inf",endpoint="\/oauth2\/token"\} 3$/m);
    expect(text).toMatch(/^tollgate_registry_clients 1$/m);
    expect(text).toMatch(/^tollgate_registry_loaded_timestamp_seconds \d+/m);
    expect(text).toMatch(/^tollgate_signing_key_created_timestamp_seconds \d+/m);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('secret=x');
  });
});

describe('argon2 queue-full refusals in /metrics', () => {
  it('are counted apart, not recorded as verifications in the fastest bucket', async () => {
    const metrics = new Metrics({ processMetrics: false });
    // One verification at a time and no queue, as main.ts wires the verifier to the metrics.
    const verifier = new SecretVerifier({
      limiter: new Limiter(1, 0),
      observe: (s) => metrics.argon2Seconds.observe(s),
      queueFull: () => metrics.argon2QueueFull.inc(),
    });
    const t = await buildTestApp({
      clients: await registryYaml([client({ id: 'svc', secret: SECRET, audiences: [API] })]),
      deps: { metrics, verifier },
    });
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        tokenRequest(t.app, { client: 'svc', secret: `wrong-${i}` }),
      ),
    );
    const refused = answers.filter((r) => r.statusCode === 503).length;
    const verified = answers.filter((r) => r.statusCode === 401).length;
    expect(refused).toBeGreaterThan(0);
    expect(refused + verified).toBe(5);
    const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(new RegExp(`^tollgate_argon2_verify_duration_seconds_count ${verified}$`, 'm'));
    expect(text).toMatch(new RegExp(`^tollgate_argon2_queue_full_total ${refused}$`, 'm'));
    // A real verification takes longer than 5 ms: nothing is in the fastest bucket.
    expect(text).toMatch(/^tollgate_argon2_verify_duration_seconds_bucket\{le="0.005"\} 0$/m);
  });
});
