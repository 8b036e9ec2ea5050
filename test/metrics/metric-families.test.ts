import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterFamily, HistogramFamily } from '../../src/metrics/metric-families.js';

const BUCKETS = [0.001, 0.01, 0.1];

function lines(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('counter and histogram families', () => {
  it('count per label set, in the exposition format', async () => {
    const registry = new Registry();
    const requests = new CounterFamily('t_requests_total', 'Requests', ['endpoint', 'status'], registry);
    requests.child('/token', '200').inc();
    requests.child('/token', '200').inc();
    requests.child('/token', '401').inc(3);
    const text = await registry.metrics();
    expect(text).toContain('# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n');
    expect(lines(text, 't_requests_total')).toEqual(['t_requests_total{endpoint="/token",status="200"} 2', 't_requests_total{endpoint="/token",status="401"} 3']);
  });

  it('print a histogram exactly as a prom-client histogram fed the same values', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const family = new HistogramFamily('t_seconds', 'Seconds', ['endpoint'], BUCKETS, ours);
    const reference = new Histogram({ name: 't_seconds', help: 'Seconds', labelNames: ['endpoint'], buckets: BUCKETS, registers: [theirs] });
    // Values on a bound belong to that bucket (le is "less than or equal").
    const values = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 7];
    for (const v of values) {
      family.child('/token').observe(v);
      reference.observe({ endpoint: '/token' }, v);
    }
    family.child('/jwks').observe(0.003);
    reference.observe({ endpoint: '/jwks' }, 0.003);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(lines(await ours.metrics(), 't_seconds_bucket{le="0.01",endpoint="/token"}')).toEqual(['t_seconds_bucket{le="0.01",endpoint="/token"} 4']);
  });

  it('are summed over registries as the cluster primary sums workers', async () => {
    const workers = [new Registry(), new Registry()];
    workers.forEach((registry, i) => {
      new CounterFamily('t_requests_total', 'Requests', ['endpoint'], registry).child('/token').inc(i + 1);
      new HistogramFamily('t_seconds', 'Seconds', ['endpoint'], BUCKETS, registry).child('/token').observe(0.005 * (i + 1));
    });
    const sum = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    const text = await sum.metrics();
    expect(lines(text, 't_requests_total')).toEqual(['t_requests_total{endpoint="/token"} 3']);
    expect(lines(text, 't_seconds_bucket{le="0.01"')).toEqual(['t_seconds_bucket{le="0.01",endpoint="/token"} 2']);
    expect(lines(text, 't_seconds_count')).toEqual(['t_seconds_count{endpoint="/token"} 2']);
    expect(lines(text, 't_seconds_sum')).toEqual(['t_seconds_sum{endpoint="/token"} 0.015']);
  });

  it('forget their label sets when the registry is reset, and refuse a wrong number of labels', async () => {
    const registry = new Registry();
    const family = new CounterFamily('t_requests_total', 'Requests', ['endpoint', 'status'], registry);
    family.child('/token', '200').inc();
    registry.resetMetrics();
    expect(lines(await registry.metrics(), 't_requests_total')).toEqual([]);
    expect(() => family.child('/token')).toThrow(/expected 2 label values/);
    expect(() => new CounterFamily('t_requests_total', 'Again', [], registry)).toThrow(/already been registered/);
  });
});
