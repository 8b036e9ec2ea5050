// One class per OAuth error code (RFC 6749 §5.2, RFC 8707 §2, RFC 6750 §3.1). Each fixes the
// code, the HTTP status and a public description; `detail` is for the log only and is never
// sent, so an answer cannot tell a caller which part of a credential was wrong.

export abstract class OAuthError extends Error {
  abstract readonly error: string;
  abstract readonly status: number;
  /** Log-only: why this happened, in words for an operator. Never a secret or a token. */
  readonly detail: string | undefined;
  /** Public text for error_description. */
  readonly description: string;

  constructor(description: string, detail?: string) {
    super(description);
    this.name = new.target.name;
    this.description = description;
    this.detail = detail;
  }

  /** Extra response headers this error needs. */
  headers(): Record<string, string> {
    return {};
  }

  body(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

export class InvalidRequest extends OAuthError {
  readonly error = 'invalid_request';
  readonly status: number = 400;
}

/** Client authentication failed. Every cause gets the same public text (RFC 6749 §5.2). */
export class InvalidClient extends OAuthError {
  readonly error = 'invalid_client';
  readonly status = 401;

  /**
   * `reason` is the log-only cause, e.g. `unknown_client`. `presentedId` is the client_id the
   * request gave, which may be anything (even a secret pasted into the wrong field): see logId.
   */
  constructor(
    readonly reason: string,
    readonly presentedId?: string,
  ) {
    super('client authentication failed', reason);
  }

  override headers(): Record<string, string> {
    return { 'www-authenticate': 'Basic realm="tollgate"' };
  }
}

export class UnauthorizedClient extends OAuthError {
  readonly error = 'unauthorized_client';
  readonly status = 400;
}

export class UnsupportedGrantType extends OAuthError {
  readonly error = 'unsupported_grant_type';
  readonly status = 400;
}

export class InvalidScope extends OAuthError {
  readonly error = 'invalid_scope';
  readonly status = 400;
}

/** RFC 8707 §2: the requested resource or audience is not one this client may have. */
export class InvalidTarget extends OAuthError {
  readonly error = 'invalid_target';
  readonly status = 400;
}

/**
 * RFC 9449 §4.3 / §5: the DPoP proof failed a check. `check` (e.g. `htu`) names it, for the
 * description and the audit log; the description says what was wrong, never the proof.
 */
export class InvalidDpopProof extends OAuthError {
  readonly error = 'invalid_dpop_proof';
  readonly status = 400;

  constructor(
    readonly check: string,
    description: string,
  ) {
    super(`DPoP proof ${description}`, `dpop_${check}`);
  }
}

/**
 * RFC 9449 §8: the server wants a nonce of its own in the proof, and this one had none or one
 * no longer current. The answer carries the nonce to use; the client makes a new proof with it.
 */
export class UseDpopNonce extends OAuthError {
  readonly error = 'use_dpop_nonce';
  readonly status = 400;

  constructor(
    readonly nonce: string,
    detail: 'missing' | 'stale_or_unknown',
  ) {
    super('the DPoP proof must carry the nonce given in the DPoP-Nonce header', `dpop_nonce_${detail}`);
  }

  override headers(): Record<string, string> {
    return { 'DPoP-Nonce': this.nonce };
  }
}

/** A client whose registry entry says dpop_bound_access_tokens asked for a token without a proof. */
export class DpopProofRequired extends InvalidRequest {
  constructor(readonly clientId: string) {
    super('this client must send a DPoP proof (RFC 9449)', 'dpop_required');
  }
}

/** A request to an endpoint with a method it does not serve; RFC 9110 §15.5.6 wants Allow. */
export class MethodNotAllowed extends InvalidRequest {
  override readonly status = 405;

  constructor(readonly allow: string) {
    super(`use ${allow}`);
  }

  override headers(): Record<string, string> {
    return { allow: this.allow };
  }
}

export class NotFound extends InvalidRequest {
  override readonly status = 404;
}

export class PayloadTooLarge extends InvalidRequest {
  override readonly status = 413;
}

/**
 * Too many failed authentications from this address (for this client_id): refused before any
 * secret is checked. OAuth defines no code for it; temporarily_unavailable says what to do.
 */
export class TooManyRequests extends OAuthError {
  readonly error = 'temporarily_unavailable';
  readonly status = 429;

  constructor(
    readonly retryAfterSeconds: number,
    readonly scope: 'client' | 'address',
  ) {
    super('too many failed authentication attempts; retry later', `throttled per ${scope}`);
  }

  override headers(): Record<string, string> {
    return { 'retry-after': String(this.retryAfterSeconds) };
  }
}

export class ServerError extends OAuthError {
  readonly error = 'server_error';
  readonly status = 500;
}

export class TemporarilyUnavailable extends OAuthError {
  readonly error = 'temporarily_unavailable';
  readonly status = 503;

  constructor(description: string, readonly retryAfterSeconds = 5, detail?: string) {
    super(description, detail);
  }

  override headers(): Record<string, string> {
    return { 'retry-after': String(this.retryAfterSeconds) };
  }
}
