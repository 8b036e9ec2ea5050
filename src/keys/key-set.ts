import type { CryptoKey, JWK } from 'jose';

/** A private key that can sign access tokens. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly key: CryptoKey;
  /** When the key was created, ms since the epoch. */
  readonly createdAt: number;
}

/** The public half of a key as published in the JWKS (RFC 7517). */
export interface PublicJwk extends JWK {
  kty: string;
  kid: string;
  alg: string;
  use: 'sig';
}

/** The server's signing keys: one signs, all are published. */
export interface KeySet {
  signingKey(): SigningKey;
  /** `{"keys":[…]}` with public parts only. */
  jwks(): { keys: readonly PublicJwk[] };
}

/**
 * The key that signs now, of keys listed newest first: the first whose signs-from time has
 * come, else (every key still pending) the last one. The rule of both key sources.
 */
export function signingKeyAt(keys: readonly { readonly signsFrom: number; readonly signing: SigningKey }[], now: number): SigningKey {
  return (keys.find((k) => k.signsFrom <= now) ?? keys[keys.length - 1]!).signing;
}

/**
 * Runs `check` every `intervalMs`, one at a time (a slow disk or store must not stack checks
 * up), and says `rotated` when the signing key has changed since the last check (a new key, or
 * a pending key whose time has come). Nothing a check meets may end the process: a failure of
 * the listener itself is dropped. The timer does not keep the process alive.
 */
export function pollKeys(keys: Pick<KeySet, 'signingKey'>, check: () => Promise<void>, onRotated: (event: { type: 'rotated'; from: string; to: string }) => void, intervalMs: number): NodeJS.Timeout {
  let signing = keys.signingKey().kid;
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check()
      .then(() => {
        const now = keys.signingKey().kid;
        if (now !== signing) onRotated({ type: 'rotated', from: signing, to: now });
        signing = now;
      })
      .catch(() => undefined)
      .finally(() => (checking = false));
  }, intervalMs);
  timer.unref();
  return timer;
}
