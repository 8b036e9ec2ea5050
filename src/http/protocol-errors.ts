import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { onRequestHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { InvalidRequest } from '../oauth/errors.js';
import { noStore } from './headers.js';

/** How long a client has to send its request, and how often that is checked. */
export interface HttpDeadlines {
  /** The request line and headers must have arrived within this, ms (Node's headersTimeout). */
  headersMs: number;
  /** The whole request, body included, within this, ms (Node's requestTimeout). */
  requestMs: number;
  /** How often Node looks for requests past their deadline, ms: one is cut off up to this late. */
  checkIntervalMs: number;
}

/** The documented deadlines: a request arrives whole within 10 s, or gets 408 by 11 s at most. */
export const DEFAULT_DEADLINES: Readonly<HttpDeadlines> = Object.freeze({ headersMs: 10_000, requestMs: 10_000, checkIntervalMs: 1_000 });

/**
 * Options for Node's http(s).createServer. They must be given there: Fastify sets
 * `server.requestTimeout` after creating the server, and Node then never applies it to a body
 * that stops half way (and keeps its 60 s for headers and its 30 s check interval).
 */
export function nodeServerOptions(deadlines: HttpDeadlines): ServerOptions {
  return {
    headersTimeout: deadlines.headersMs,
    requestTimeout: deadlines.requestMs,
    connectionsCheckingInterval: deadlines.checkIntervalMs,
    // Node would answer a missing Host itself, with an empty body; requireHost answers it instead.
    requireHostHeader: false,
  };
}

/** An HTTP-level refusal: `invalid_request`, with the status HTTP prescribes for the case. */
class HttpRefusal extends InvalidRequest {
  override readonly status: number;

  constructor(status: number, description: string, detail: string) {
    super(description, detail);
    this.status = status;
  }
}

/** What Node's parser (or its request deadline) reports, as the answer to give. */
function refusalFor(code: string): HttpRefusal {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new HttpRefusal(408, 'the request did not arrive in full in time', code);
  if (code === 'HPE_HEADER_OVERFLOW') return new HttpRefusal(431, 'request headers too large', code);
  return new HttpRefusal(400, 'malformed HTTP request', code);
}

/**
 * Fastify's `clientErrorHandler`: a request Node could not parse, or that missed its deadline,
 * gets an OAuth error body with no-store, a log line and a count, like any other refusal. The
 * error is never logged: it carries the raw request bytes (`rawPacket`), credentials included,
 * where redaction cannot see them. Its code says enough.
 */
export function clientErrorHandler(logger: Logger, metrics: Metrics): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    // Reset by the peer, or already closed: there is nobody to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // A response already under way cannot be replaced; the connection is only cut.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && inFlight?.headersSent !== true) {
      const refusal = refusalFor(err.code ?? 'unknown');
      const body = JSON.stringify(refusal.body());
      const headers = { ...noStore, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' };
      const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n${head.join('')}\r\n${body}`);
      // Not timed: the request never started in Fastify, so there is no duration to give.
      metrics.requests.child('unmatched', String(refusal.status)).inc();
      logger.info(
        { event: 'request.rejected', error: refusal.error, detail: refusal.detail, status: refusal.status, ip: socket.remoteAddress },
        refusal.description,
      );
    }
    socket.destroy();
  };
}

/**
 * RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host. Node would do
 * it with an empty body of its own, unlogged and uncounted; this answers it like any bad request.
 */
export const requireHost: onRequestHookHandler = (req, _reply, done) => {
  if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) done(new InvalidRequest('missing Host header', 'no_host'));
  else done();
};
