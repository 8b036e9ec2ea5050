import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

// No redaction: a redaction pass walked every object logged, on every line, looking for paths
// that tollgate never writes, and cost more than the route it guarded. Instead, nothing that
// holds a secret is ever handed to the logger: routes log named fields they chose (client_id,
// jti, a reason), and the three objects that could carry request bytes by accident (a request,
// a reply, an error) go through the serializers below, which copy only fields known to be safe.
// test/http/log-secrets.test.ts decodes every field of every line at every level to keep it so.

/** Error fields that describe a failure without repeating its input. */
const SAFE_ERROR_FIELDS = ['code', 'errno', 'syscall', 'address', 'port', 'statusCode'] as const;
const MAX_CAUSES = 3;

/**
 * An error as type, message, stack, code and its causes. Everything else is left out: Node's
 * HTTP parser errors carry the raw request bytes (`rawPacket`, Authorization headers included),
 * and other libraries attach requests, options or configs.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err === null || typeof err !== 'object' ? err : { type: 'non-error object' };
  const out: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  const fields = err as unknown as Record<string, unknown>;
  for (const key of SAFE_ERROR_FIELDS) {
    const v = fields[key];
    if (typeof v === 'string' || typeof v === 'number') out[key] = v;
  }
  if (err.cause !== undefined && depth < MAX_CAUSES) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** A request as its method, its path without the query string, and its id: never headers or body. */
export function serializeRequest(req: unknown): unknown {
  const r = req as { method?: unknown; url?: unknown; id?: unknown };
  const url = typeof r.url === 'string' ? r.url : '';
  const q = url.indexOf('?');
  return { method: r.method, path: q < 0 ? url : url.slice(0, q), id: r.id };
}

/** A reply as its status code only. */
export function serializeReply(res: unknown): unknown {
  return { statusCode: (res as { statusCode?: unknown }).statusCode };
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'tollgate', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn" rather than pino's 40: read by people and by log tools without a table.
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError, error: serializeError, req: serializeRequest, request: serializeRequest, res: serializeReply, reply: serializeReply },
  };
}

/** The most log bytes held while stdout is not read; beyond it lines are dropped, and said so on stderr. */
export const MAX_BUFFERED_LOG_BYTES = 32 * 1024 * 1024;
/** How often, at most, stderr is told that lines are being dropped (ms). */
const DROP_NOTICE_MS = 60_000;

/**
 * stdout, written asynchronously: lines written while a write is under way are joined into the
 * next one, and a full pipe (a slow log collector) delays lines instead of stopping the server.
 * pino's synchronous default slept 100 ms on the event loop whenever the pipe was full. What is
 * still buffered is written synchronously when the process exits, a crash included; only a
 * SIGKILL loses it.
 *
 * A collector that stops reading would make that buffer grow until the process runs out of
 * memory and loses everything, requests in flight included. So at most maxBytes are held; past
 * that, lines are dropped and counted, and one line on stderr (a different pipe) says how many,
 * at most once a minute.
 */
export function stdout(options: { fd?: number; maxBytes?: number; stderr?: (line: string) => void } = {}): DestinationStream {
  const destination = pino.destination({ dest: options.fd ?? 1, sync: false, maxLength: options.maxBytes ?? MAX_BUFFERED_LOG_BYTES });
  const tell = options.stderr ?? ((line: string) => process.stderr.write(line));
  let dropped = 0;
  let toldAt = Number.NEGATIVE_INFINITY;
  destination.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - toldAt < DROP_NOTICE_MS) return;
    toldAt = now;
    tell(`tollgate: stdout is not being read: ${dropped} log line${dropped === 1 ? '' : 's'} dropped so far (at most ${Math.round((options.maxBytes ?? MAX_BUFFERED_LOG_BYTES) / 1024)} KiB are held)\n`);
  });
  return destination;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(loggerOptions(level), destination ?? stdout());
}
