import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Fields that could carry a credential, censored wherever they appear in a log object. tollgate
 * never logs them on purpose; this catches the accident.
 */
const REDACT = [
  'authorization',
  'client_secret',
  'secret',
  'access_token',
  'token',
  'client_assertion',
  '*.authorization',
  '*.client_secret',
  '*.secret',
  '*.access_token',
  '*.token',
  '*.client_assertion',
  'req.headers.authorization',
  'req.headers.cookie',
  // Node's HTTP parser errors carry the raw request bytes, credentials included, as a Buffer the
  // paths above cannot see into. tollgate never logs one (see http/protocol-errors.ts); this
  // catches the accident.
  'rawPacket',
  '*.rawPacket',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'tollgate', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn" rather than pino's 40: read by people and by log tools without a table.
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination === undefined ? pino(loggerOptions(level)) : pino(loggerOptions(level), destination);
}
