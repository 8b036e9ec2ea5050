import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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

  it('hold a bounded amount while stdout is not read: the rest is dropped and said once on stderr', async () => {
    // A process of its own, whose stdout this test leaves unread until it has logged 20,000
    // lines (about 3 MB) with at most 256 KiB held: a stalled log collector must not grow the
    // process until it dies.
    const log = pathToFileURL(resolve(import.meta.dirname, '../../dist/server/log.js')).href;
    const script = `
      const { createLogger, stdout } = await import(${JSON.stringify(log)});
      const logger = createLogger('info', stdout({ maxBytes: 256 * 1024 }));
      for (let i = 0; i < 20000; i++) logger.info({ event: 'test.filler', i }, 'a line long enough to fill a pipe quickly, about a hundred and fifty bytes');
      process.stderr.write('logged\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    while (!stderr.includes('logged\n')) {
      if (child.exitCode !== null) throw new Error(`exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    let stdoutText = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutText += chunk.toString();
    });
    child.stdout.resume();
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const notices = stderr.split('\n').filter((l) => l.startsWith('tollgate: stdout is not being read: '));
    expect(notices).toEqual([expect.stringMatching(/^tollgate: stdout is not being read: 1 log line dropped so far \(at most 256 KiB are held\)$/)]);
    const lines = stdoutText.split('\n').filter((l) => l !== '');
    // What the pipe, the reader's buffer and the 256 KiB held could take: far from all 20,000.
    expect(lines.length).toBeGreaterThan(100);
    expect(lines.length).toBeLessThan(5_000);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'test.filler', i: 0 });
  });
});
