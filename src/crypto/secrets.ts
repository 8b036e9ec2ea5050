import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

/**
 * argon2id parameters for every hash tollgate makes: OWASP's minimum set (19 MiB, 2 passes,
 * 1 lane), pinned here rather than left to the library's defaults (64 MiB, 3 passes, 4 lanes),
 * which cost ~10x more per token request. Stored hashes carry their own parameters.
 */
export const ARGON2_OPTIONS = Object.freeze({
  type: argon2.argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
});

/** Secrets longer than this are refused before any hashing work is spent on them. */
export const MAX_SECRET_LENGTH = 512;

/** A new client secret: 256 random bits, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): Promise<string> {
  return argon2.hash(secret, ARGON2_OPTIONS);
}

/**
 * Checks a presented secret against an argon2id hash. argon2's own comparison is constant-time;
 * a hash the library cannot read counts as a mismatch, never as an exception.
 */
export async function verifySecret(hash: string, secret: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, secret);
  } catch {
    return false;
  }
}
