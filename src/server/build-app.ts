import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Audit } from '../http/audit.js';
import { metricsRoute } from '../http/metrics-route.js';
import { discoveryRoutes } from '../http/discovery-route.js';
import { errorHandler, pathOf, sendError } from '../http/errors.js';
import { healthRoutes, type Readiness } from '../http/health-route.js';
import { introspectionRoute } from '../http/introspection-route.js';
import { clientErrorHandler, DEFAULT_DEADLINES, nodeServerOptions, requireHost, type HttpDeadlines } from '../http/protocol-errors.js';
import { lazyRequestLogger } from '../http/request-logger.js';
import { revocationRoute } from '../http/revocation-route.js';
import { tokenRoute } from '../http/token-route.js';
import type { Config } from '../config/config.js';
import type { StoreLifecycle } from '../store/token-store.js';
import { MethodNotAllowed, NotFound } from '../oauth/errors.js';
import { INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, REVOCATION_PATH, TOKEN_PATH } from '../oauth/metadata.js';
import { isServices, wireServices, type ServiceParts, type Services } from './services.js';

/** 16 KiB: a token request is a few hundred bytes; nothing legitimate comes near this. */
export const BODY_LIMIT = 16 * 1024;

/** How the HTTP server behaves, apart from the services behind its endpoints. */
export interface HttpOptions {
  config: Pick<Config, 'trust_proxy' | 'metadata' | 'listen' | 'log'>;
  logger: Logger;
  /** What /metrics serves; the metrics' own registry if omitted (under --workers, every worker's). */
  metricsText?: () => Promise<string>;
  /** TLS to serve HTTPS with (PEM contents); plain HTTP when omitted. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Whether the server can serve tokens now; by default, whether the token store answers. */
  readiness?: () => Readiness | Promise<Readiness>;
  /** How long a client has to send its request; the documented 10 s when omitted. */
  deadlines?: Partial<HttpDeadlines>;
}

/**
 * The services (see buildServices) and how to serve them. Given the parts instead, as a test
 * that swaps one of them does, the services are made from them by wireServices, the same code
 * buildServices uses.
 */
export type AppDeps = HttpOptions & (Services | ServiceParts);

/** Which methods each path serves, for 405 answers with an Allow header. */
const ALLOWED: Readonly<Record<string, string>> = {
  [TOKEN_PATH]: 'POST',
  [INTROSPECTION_PATH]: 'POST',
  [REVOCATION_PATH]: 'POST',
  [METADATA_PATH]: 'GET, HEAD',
  [JWKS_PATH]: 'GET, HEAD',
  '/healthz': 'GET, HEAD',
  '/readyz': 'GET, HEAD',
  '/metrics': 'GET, HEAD',
};

/** Builds the HTTP application. Does no I/O: the caller listens, or calls inject() in tests. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const services = isServices(deps) ? deps : wireServices(deps);
  const { metrics } = services;
  const onError = errorHandler(deps.registry, metrics);
  // The audit lines (tokens issued and revoked, introspections) go through the server's logger.
  const { logger } = deps;
  const audit = new Audit(logger, {
    introspections: deps.config.log.introspections,
    summaryInterval: deps.config.log.summary_interval,
    clock: services.clock,
  });
  /** The access line and the request metrics of one answer. */
  const recordAnswer = (req: FastifyRequest, reply: FastifyReply): void => {
    // At debug: at info, the audit lines say what matters, and a resource server introspecting
    // thousands of times a second must not cost its operator thousands of lines a second.
    // Checked first, so that at info no object is made for a line that is not written.
    if (logger.isLevelEnabled('debug')) {
      req.log.debug({ method: req.method, path: pathOf(req), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    }
    // The route's pattern, never the raw URL: labels must stay few.
    metrics.observeRequest(req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  };
  const deadlines = { ...DEFAULT_DEADLINES, ...deps.deadlines };
  const app = Fastify({
    loggerInstance: deps.logger,
    // One access line per request is written in onResponse, with the path only: Fastify's own
    // request log includes the query string, which could carry a secret sent by mistake.
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's child logger (with its reqId) is made only when it writes a line.
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: BODY_LIMIT,
    // A client that trickles its request (slowloris) is cut off; a token request takes milliseconds.
    // Fastify copies this onto the server once made, so it must agree with nodeServerOptions.
    requestTimeout: deadlines.requestMs,
    // What Node's parser refuses, and a URL the router cannot decode, are answered like any bad
    // request: an OAuth error body with no-store, logged, counted, and no echo of the input.
    clientErrorHandler: clientErrorHandler(deps.logger, metrics),
    frameworkErrors: (err, req, reply) => {
      onError(err, req, reply);
      // Fastify runs no onResponse hook for these.
      recordAnswer(req, reply);
    },
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
    // X-Forwarded-For is believed only from the listed proxies (proxy-addr semantics).
    trustProxy: deps.config.trust_proxy.length > 0 ? [...deps.config.trust_proxy] : false,
    ...(deps.tls === undefined
      ? { http: nodeServerOptions(deadlines) }
      : {
          https: {
            ...nodeServerOptions(deadlines),
            cert: deps.tls.cert,
            key: deps.tls.key,
            // Ask for a certificate but do not require one: clients using other methods share the port.
            ...(deps.tls.clientCa === undefined ? {} : { ca: deps.tls.clientCa, requestCert: true, rejectUnauthorized: false }),
          },
        }),
  }) as unknown as FastifyInstance;

  // Only form bodies are parsed; any other content type is refused by the error handler.
  app.removeAllContentTypeParsers();
  app.register(formbody, { bodyLimit: BODY_LIMIT });

  app.setErrorHandler(onError);
  app.addHook('onRequest', requireHost);
  app.setNotFoundHandler((req, reply) => {
    const allow = ALLOWED[pathOf(req)];
    if (allow !== undefined) return sendError(new MethodNotAllowed(allow), reply);
    return sendError(new NotFound('no such endpoint'), reply);
  });
  // A callback hook, not an async one: it runs on every request, and needs no promise.
  app.addHook('onResponse', (req, reply, done) => {
    recordAnswer(req, reply);
    done();
  });

  const { config, registry, store } = services;
  tokenRoute(app, { ...services, audit });
  introspectionRoute(app, { ...services, audit });
  revocationRoute(app, { ...services, audit });
  // What the introspection summaries have counted is written before the server stops.
  app.addHook('onClose', (_app, done) => {
    audit.close();
    done();
  });
  discoveryRoutes(app, {
    registry,
    keys: services.keys,
    metadata: {
      issuer: config.issuer,
      publishScopes: deps.config.metadata.publish_scopes,
      maxAge: deps.config.metadata.max_age,
      mtls: deps.config.listen.tls?.client_ca !== undefined,
    },
  });
  healthRoutes(app, deps.readiness ?? (() => storeReadiness(store)));
  metricsRoute(app, metrics, deps.metricsText ?? (() => metrics.registry.metrics()));
  return app;
}

async function storeReadiness(store: StoreLifecycle): Promise<Readiness> {
  try {
    await store.ping();
    return { ready: true };
  } catch {
    return { ready: false, reason: 'token store unavailable' };
  }
}
