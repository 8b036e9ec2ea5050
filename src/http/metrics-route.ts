import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import { noStore } from './headers.js';

/**
 * GET /metrics in the Prometheus text format. `render` gives the text: this server's registry,
 * or under `--workers` the sum over all workers (see cluster-metrics.ts).
 */
export function metricsRoute(app: FastifyInstance, metrics: Metrics, render: () => Promise<string>): void {
  app.get('/metrics', async (req, reply) => {
    let text: string;
    try {
      text = await render();
    } catch (err) {
      req.log.error({ err }, 'metrics unavailable');
      return reply.code(503).headers({ ...noStore, 'content-type': 'text/plain; charset=utf-8' }).send('metrics unavailable\n');
    }
    return reply.headers({ ...noStore, 'content-type': metrics.registry.contentType }).send(text);
  });
}
