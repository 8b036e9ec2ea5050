import type { FastifyInstance } from 'fastify';
import type { ClientRegistry } from '../clients/registry.js';
import type { KeySet } from '../keys/key-set.js';
import { introspectionSigningAlgorithms } from '../oauth/introspection-jwt.js';
import { buildMetadata, JWKS_PATH, METADATA_PATH, type MetadataOptions } from '../oauth/metadata.js';
import { publicCache } from './headers.js';

export interface DiscoveryDeps {
  registry: ClientRegistry;
  keys: KeySet;
  metadata: MetadataOptions & { maxAge: number };
}

/**
 * RFC 8414 metadata and the RFC 7517 JWKS that resource servers verify tokens with. Both are
 * fetched far more often than they change, so each is serialized once per change of what it
 * shows (a key set reload, a registry reload) and served as a ready string.
 */
export function discoveryRoutes(app: FastifyInstance, deps: DiscoveryDeps): void {
  const headers = { ...publicCache(deps.metadata.maxAge), 'content-type': 'application/json; charset=utf-8' };
  const jwks = memo(() => deps.keys.jwks(), (set) => JSON.stringify(set));
  // The signing algorithms change with the keys (an algorithm change, a rotation).
  const metadata = memo(
    () => `${deps.registry.loadedAt()} ${introspectionSigningAlgorithms(deps.keys).join(' ')}`,
    () => JSON.stringify(buildMetadata(deps.metadata, deps.registry, introspectionSigningAlgorithms(deps.keys))),
  );
  app.get(METADATA_PATH, (_req, reply) => {
    reply.headers(headers).send(metadata());
  });
  app.get(JWKS_PATH, (_req, reply) => {
    reply.headers(headers).send(jwks());
  });
}

/** The last rendering, kept while `version()` returns the same value. */
function memo<V>(version: () => V, render: (v: V) => string): () => string {
  let seen: V | undefined;
  let text = '';
  return () => {
    const v = version();
    if (v !== seen || text === '') {
      seen = v;
      text = render(v);
    }
    return text;
  };
}
