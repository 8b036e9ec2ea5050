import type { FastifyInstance } from 'fastify';
import type { ClientRegistry } from '../clients/registry.js';
import type { KeySet } from '../keys/key-set.js';
import { buildMetadata, JWKS_PATH, METADATA_PATH, type MetadataOptions } from '../oauth/metadata.js';
import { publicCache } from './headers.js';

export interface DiscoveryDeps {
  registry: ClientRegistry;
  keys: KeySet;
  metadata: MetadataOptions & { maxAge: number };
}

/** RFC 8414 metadata and the RFC 7517 JWKS that resource servers verify tokens with. */
export function discoveryRoutes(app: FastifyInstance, deps: DiscoveryDeps): void {
  const cache = publicCache(deps.metadata.maxAge);
  app.get(METADATA_PATH, async (_req, reply) => reply.headers(cache).send(buildMetadata(deps.metadata, deps.registry)));
  app.get(JWKS_PATH, async (_req, reply) =>
    reply.headers(cache).send(deps.keys.jwks()),
  );
}
