import argon2 from 'argon2';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { expectUserError, lines, tollgateInProcess } from './run-cli.js';

// hash-secret needs no config: run it where there is none.
const cwd = tempDir();

async function hashOfStdin(input: string): Promise<string> {
  const run = await tollgateInProcess(['hash-secret'], { cwd, input });
  expect(run.code).toBe(0);
  expect(lines(run.stdout)).toHaveLength(1);
  return run.stdout.trim();
}

describe.concurrent('hash-secret', () => {
  it('prints the argon2id hash of the secret on stdin, without its one trailing newline', async () => {
    const hash = await hashOfStdin('s3cret\n');
    expect(hash).toMatch(/^\$argon2id\$v=19\$[mtp]=\d+,[mtp]=\d+,[mtp]=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await argon2.verify(hash, 's3cret')).toBe(true);
    expect(await argon2.verify(hash, 's3cret\n')).toBe(false);
  });

  it('drops exactly one newline: a second one is part of the secret', async () => {
    const hash = await hashOfStdin('s3cret\n\n');
    expect(await argon2.verify(hash, 's3cret\n')).toBe(true);
    expect(await argon2.verify(hash, 's3cret')).toBe(false);
  });

  it('takes a secret with no newline as it is, and warns on stderr that a short one is weak', async () => {
    const run = await tollgateInProcess(['hash-secret'], { cwd, input: 's3cret' });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/weak/);
    expect(await argon2.verify(run.stdout.trim(), 's3cret')).toBe(true);
  });

  it('keeps leading and inner spaces', async () => {
    const hash = await hashOfStdin('  two words-0123456789abcdefghijklmnop  \n');
    expect(await argon2.verify(hash, '  two words-0123456789abcdefghijklmnop  ')).toBe(true);
  });

  it('is silent on stderr for a strong secret', async () => {
    const run = await tollgateInProcess(['hash-secret'], { cwd, input: 'W2ujNamde8cTcoIoy2t2rCyFrXd8e0Wo2yciWHKp6V0\n' });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
  });

  it.each([[''], ['\n']])('refuses an empty secret (stdin %j) with one line', async (input) => {
    expectUserError(await tollgateInProcess(['hash-secret'], { cwd, input }), /no secret on stdin/);
  });

  it('refuses a secret too long to be checked per request', async () => {
    expectUserError(await tollgateInProcess(['hash-secret'], { cwd, input: `${'x'.repeat(513)}\n` }), /longer than 512/);
  });
});
