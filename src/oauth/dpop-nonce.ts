import { signBytes, verifyBytes } from '../keys/jws.js';
import type { KeySet, PublicJwk } from '../keys/key-set.js';
import type { Clock } from '../shared/clock.js';

/**
 * Server-provided DPoP nonces (RFC 9449 §8), kept nowhere: a nonce names a time window of
 * NONCE_WINDOW_S seconds and carries the current signing key's signature over it. Every instance
 * that shares the signing keys makes and accepts the same nonces, with no shared state; nobody
 * can make one for a window to come, so proofs made in advance are refused. A nonce is accepted
 * in its own window and the next one (one to two windows), and one window early (instances'
 * clocks differ), for as long as the key that signed it is published.
 *
 * The signed bytes ("tollgate-dpop-nonce:" and the window) contain a colon, which no JWS
 * signing input can (two base64url parts and a dot), so no nonce can pass for a token.
 */
export const NONCE_WINDOW_S = 60;

/** Longer than any nonce made here (an RSA 4096 signature is 683 characters). */
const MAX_NONCE_LENGTH = 1024;

/** Nonces already verified, so that each costs one signature check per instance, not per proof. */
const VERIFIED_KEPT = 64;

export class DpopNonces {
  #current: { window: number; nonce: Promise<string> } | undefined;
  readonly #verified = new Map<string, { window: number; kid: string }>();

  constructor(
    private readonly keys: KeySet,
    private readonly clock: Clock,
  ) {}

  /** The nonce to hand out now: made once per window. */
  current(): Promise<string> {
    const window = this.#window();
    if (this.#current?.window !== window) {
      const key = this.keys.signingKey();
      const nonce = signBytes(key, signedBytes(window)).then((sig) => `${window.toString(36)}.${key.kid}.${sig.toString('base64url')}`);
      // A failed signature is not kept: the next request tries again.
      nonce.catch(() => {
        if (this.#current?.nonce === nonce) this.#current = undefined;
      });
      this.#current = { window, nonce };
    }
    return this.#current.nonce;
  }

  /** Whether a proof's nonce claim is one this server (or another sharing its keys) made, and current. */
  accepts(nonce: unknown): boolean {
    if (typeof nonce !== 'string' || nonce.length > MAX_NONCE_LENGTH) return false;
    const now = this.#window();
    // A key removed from the key set takes its nonces with it, as it takes its tokens.
    const known = this.#verified.get(nonce);
    if (known !== undefined) return isCurrent(known.window, now) && this.#published(known.kid) !== undefined;
    const parts = nonce.split('.');
    if (parts.length !== 3 || !/^[0-9a-z]{1,12}$/.test(parts[0]!) || !/^[A-Za-z0-9_-]+$/.test(parts[2]!)) return false;
    const window = Number.parseInt(parts[0]!, 36);
    const kid = parts[1]!;
    if (!isCurrent(window, now)) return false;
    const jwk = this.#published(kid);
    if (jwk === undefined || !verifyBytes(jwk, signedBytes(window), Buffer.from(parts[2]!, 'base64url'))) return false;
    if (this.#verified.size >= VERIFIED_KEPT) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(nonce, { window, kid });
    return true;
  }

  #window(): number {
    return Math.floor(this.clock.now() / 1000 / NONCE_WINDOW_S);
  }

  #published(kid: string): PublicJwk | undefined {
    return this.keys.jwks().keys.find((k) => k.kid === kid);
  }
}

function signedBytes(window: number): Buffer {
  return Buffer.from(`tollgate-dpop-nonce:${window}`);
}

/** Made in `window`, seen in `now`: its own window, the next, or one early. */
function isCurrent(window: number, now: number): boolean {
  return window >= now - 1 && window <= now + 1;
}
