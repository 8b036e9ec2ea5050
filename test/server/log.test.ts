import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/log.js';
import { LogCapture } from '../helpers.js';

describe('log lines', () => {
  it('name their level ("level":"info") instead of pino’s numbers (30)', () => {
    const logs = new LogCapture();
    const logger = createLogger('trace', logs);
    logger.trace('t');
    logger.debug('d');
    logger.info({ event: 'x' }, 'i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    const levels = logs.lines.map((l) => (JSON.parse(l) as { level: unknown }).level);
    expect(levels).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
    expect(logs.lines[2]).toMatch(/^\{"level":"info","time":"[^"]+","service":"tollgate","pid":\d+,"event":"x","msg":"i"\}$/);
  });

  it('still honour the configured level', () => {
    const logs = new LogCapture();
    const logger = createLogger('warn', logs);
    logger.info('hidden');
    logger.child({ reqId: 'r1' }).warn('shown');
    expect(logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([expect.objectContaining({ level: 'warn', reqId: 'r1', msg: 'shown' })]);
  });

  // Regression: pino's default stdout is synchronous, and on a full pipe (a slow log collector)
  // it slept 100 ms on the event loop per write, every request waiting behind it.
  it('go to stdout asynchronously, so that a full pipe cannot stall the server', () => {
    const stream = (createLogger('info') as unknown as Record<symbol, { sync?: boolean; fd?: number }>)[pino.symbols.streamSym];
    expect(stream).toMatchObject({ sync: false, fd: 1 });
  });
});
