import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// Log lines are not redacted (see src/server/log.ts): what keeps secrets out of them is that no
// log call names a field that could hold one. This reads every log call in src/ and checks the
// field names of the object it writes. test/http/log-secrets.test.ts checks the lines themselves.

const SRC = join(import.meta.dirname, '../../src');
/** Field names that would carry a credential or raw request bytes. */
const FORBIDDEN = new Set([
  'authorization',
  'cookie',
  'headers',
  'body',
  'payload',
  'rawPacket',
  'secret',
  'client_secret',
  'password',
  'token',
  'access_token',
  'client_assertion',
  'assertion',
  'dpop',
  'proof',
  'raw',
]);
/**
 * Spreads allowed at the top of a logged object, each built for the log: logId (a client_id, or
 * its hash), an audit line (http/audit.ts), a registry diff (client ids added, removed, changed).
 */
const ALLOWED_SPREADS = new Set(['logId', 'line', 'summary']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The object literals passed first to a log call: `.info({ … }`, with nested braces matched. */
function loggedObjects(text: string): string[] {
  const out: string[] = [];
  const call = /\.(?:fatal|error|warn|info|debug|trace)\(\s*\{/g;
  for (let m = call.exec(text); m !== null; m = call.exec(text)) {
    const start = m.index + m[0].length - 1;
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) {
        out.push(text.slice(start, i + 1));
        break;
      }
    }
  }
  return out;
}

/** The top-level field names of an object literal's text, and what it spreads. */
function topLevel(literal: string): { keys: string[]; spreads: string[] } {
  const keys: string[] = [];
  const spreads: string[] = [];
  let depth = 0;
  let part = '';
  const flush = () => {
    const p = part.trim();
    part = '';
    if (p === '') return;
    const spread = /^\.\.\.\(?\s*([A-Za-z_$][\w$]*)/.exec(p);
    if (spread) spreads.push(spread[1]!);
    else keys.push(/^['"]?([\w$#]+)['"]?\s*(?::|$)/.exec(p)?.[1] ?? p);
  };
  for (const ch of literal.slice(1, -1)) {
    if ('{[('.includes(ch)) depth++;
    if ('}])'.includes(ch)) depth--;
    if (ch === ',' && depth === 0) flush();
    else part += ch;
  }
  flush();
  return { keys, spreads };
}

describe('log calls in src/', () => {
  const calls = sources(SRC).flatMap((file) => loggedObjects(readFileSync(file, 'utf8')).map((literal) => ({ file: relative(SRC, file), ...topLevel(literal) })));

  it('are found (the check is not vacuous)', () => {
    expect(calls.length).toBeGreaterThan(20);
    expect(calls.some((c) => c.keys.includes('client_id') && c.keys.includes('jti'))).toBe(true);
  });

  it('never name a field that could hold a secret, a token or request bytes', () => {
    const bad = calls.flatMap((c) => c.keys.filter((k) => FORBIDDEN.has(k)).map((k) => `${c.file}: ${k}`));
    expect(bad).toEqual([]);
  });

  it('spread only objects built for the log', () => {
    const bad = calls.flatMap((c) => c.spreads.filter((s) => !ALLOWED_SPREADS.has(s)).map((s) => `${c.file}: ...${s}`));
    expect(bad).toEqual([]);
  });

  it('would catch one that did', () => {
    expect(topLevel("{ event: 'x', token, 'client_secret': s, nested: { a: 1, b: 2 }, ...req.headers }")).toEqual({
      keys: ['event', 'token', 'client_secret', 'nested'],
      spreads: ['req'],
    });
  });
});
