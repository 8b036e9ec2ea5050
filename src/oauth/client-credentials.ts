import type { Client } from '../clients/registry.js';
import { InvalidScope, InvalidTarget } from './errors.js';
import type { Params } from './params.js';
import { isResourceIndicator, parseScope } from '../shared/syntax.js';

/** What the client credentials grant (RFC 6749 §4.4) decides to give a client. */
export interface Grant {
  scopes: readonly string[];
  audience: readonly string[];
  ttl: number;
}

export interface GrantPolicy {
  /** `tokens.audience`: the audiences of clients that have none of their own. */
  defaultAudience: readonly string[];
  /** `tokens.ttl`: lifetime of tokens of clients without `token_ttl`. */
  defaultTtl: number;
}

/** Applies the client's limits to what it asked for. Throws InvalidScope or InvalidTarget. */
export function decideGrant(client: Client, params: Params, policy: GrantPolicy): Grant {
  return {
    scopes: grantedScopes(client, params.get('scope')),
    audience: grantedAudience(client, [...params.all('resource'), ...params.all('audience')], params, policy),
    ttl: client.tokenTtl ?? policy.defaultTtl,
  };
}

/** RFC 6749 §3.3: every requested scope must be allowed; none requested means the defaults. */
function grantedScopes(client: Client, requested: string | undefined): readonly string[] {
  if (requested === undefined) return client.defaultScopes;
  const scopes = parseScope(requested);
  if (scopes === undefined) throw new InvalidScope('scope is not a space-separated list of scope tokens');
  const allowed = new Set(client.scopes);
  const refused = scopes.filter((s) => !allowed.has(s));
  if (refused.length > 0) throw new InvalidScope('the requested scope is not allowed for this client', `refused: ${refused.join(' ')}`);
  return scopes;
}

/**
 * RFC 8707 `resource` (each an absolute URI without fragment) and the widespread `audience`
 * parameter both name the token's audience; every value must be one the client may have.
 * With neither, the client's first audience is used, or `tokens.audience` for a client with none.
 */
function grantedAudience(client: Client, requested: readonly string[], params: Params, policy: GrantPolicy): readonly string[] {
  const allowed = client.audiences.length > 0 ? client.audiences : policy.defaultAudience;
  if (requested.length === 0) return client.audiences.length > 0 ? client.audiences.slice(0, 1) : policy.defaultAudience;
  if (params.all('resource').some((r) => !isResourceIndicator(r))) {
    throw new InvalidTarget('resource must be an absolute URI without a fragment');
  }
  const unique = [...new Set(requested)];
  const refused = unique.filter((a) => !allowed.includes(a));
  if (refused.length > 0) throw new InvalidTarget('the requested resource is not allowed for this client', `refused: ${refused.join(' ')}`);
  return unique;
}
