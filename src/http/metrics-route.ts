import type { FastifyInstance } from 'fastify';
import type { ClientRegistry } from '../clients/registry.js';
import type { KeySet } from '../keys/key-set.js';
import type { Metrics } from '../metrics.js';
import { noStore } from './headers.js';

/** GET /metrics in the Prometheus text format. */
export function metricsRoute(app: FastifyInstance, metrics: Metrics, registry: ClientRegistry, keys: KeySet): void {
  app.get('/metrics', async (_req, reply) => {
    // Gauges read from their sources at scrape time, so they are never stale.
    metrics.registryClients.set(registry.all().length);
    metrics.registryLoadedAt.set(registry.loadedAt() / 1000);
    metrics.signingKeyCreatedAt.set(keys.signingKey().createdAt / 1000);
    return reply.headers({ ...noStore, 'content-type': metrics.registry.contentType }).send(await metrics.registry.metrics());
  });
}
