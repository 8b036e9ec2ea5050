import type { FastifyInstance } from 'fastify';
import { noStore } from './headers.js';

export interface Readiness {
  ready: boolean;
  /** Why not, for the operator. */
  reason?: string;
}

/** GET /healthz (the process answers) and GET /readyz (it can serve tokens). */
export function healthRoutes(app: FastifyInstance, readiness: () => Readiness | Promise<Readiness>): void {
  app.get('/healthz', async (_req, reply) => reply.headers(noStore).send({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await readiness();
    return reply
      .code(r.ready ? 200 : 503)
      .headers(noStore)
      .send(r.ready ? { status: 'ready' } : { status: 'not_ready', reason: r.reason });
  });
}
