import { spiffeTrustDomain } from '../clients/spiffe-id.js';
import { parseCidr } from '../shared/address-list.js';
import { AUTH_METHODS, SECRET_AUTH_METHODS, type AuthMethod } from '../clients/registry.js';
import { MAX_TTL, MIN_TTL } from '../shared/limits.js';
import { parseDuration } from '../shared/duration.js';
import { isAudience, isScopeToken } from '../shared/syntax.js';
import { UsageError } from './usage.js';

/** The flags `client add` and `client update` share, as node:util parseArgs options. */
export const CLIENT_FLAGS = {
  scope: { type: 'string', multiple: true },
  audience: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  'auth-method': { type: 'string', multiple: true },
  'allowed-ip': { type: 'string', multiple: true },
  introspect: { type: 'boolean' },
  'require-dpop': { type: 'boolean' },
} as const;

/** What the flags ask for, in registry field names; a field whose flag was not given is absent. */
export interface ClientFields {
  scopes?: string[];
  audiences?: string[];
  token_ttl?: number;
  auth_methods?: AuthMethod[];
  allowed_ips?: string[];
}

interface FlagValues {
  scope?: string[];
  audience?: string[];
  ttl?: string;
  'auth-method'?: string[];
  'allowed-ip'?: string[];
}

/**
 * Checks the shared flags the way the registry would, so a mistake is one line about the flag
 * rather than a problem in a file. `keyMethods` says whether key-based auth methods may be named:
 * `client add` makes secret-based clients only.
 */
export function parseClientFlags(values: FlagValues, command: string, keyMethods: boolean): ClientFields {
  const fields: ClientFields = {};
  if (values.scope !== undefined) {
    const scopes = [...new Set(values.scope.flatMap((s) => s.split(/\s+/)).filter((s) => s !== ''))];
    const bad = scopes.find((s) => !isScopeToken(s));
    if (bad !== undefined) throw new UsageError(`invalid scope ${JSON.stringify(bad)}: visible ASCII without quotes or backslashes`);
    fields.scopes = scopes;
  }
  if (values.audience !== undefined) {
    const audiences = [...new Set(values.audience)];
    const bad = audiences.find((a) => !isAudience(a));
    if (bad !== undefined) throw new UsageError(`invalid audience ${JSON.stringify(bad)}`);
    fields.audiences = audiences;
  }
  if (values.ttl !== undefined) {
    const ttl = parseDuration(values.ttl);
    if (ttl === undefined || ttl < MIN_TTL || ttl > MAX_TTL) throw new UsageError(`--ttl must be ${MIN_TTL} to ${MAX_TTL} seconds (or a duration like 15m)`);
    fields.token_ttl = ttl;
  }
  if (values['auth-method'] !== undefined) {
    const methods = [...new Set(values['auth-method'])];
    const allowed: readonly string[] = keyMethods ? AUTH_METHODS : SECRET_AUTH_METHODS;
    const bad = methods.find((m) => !allowed.includes(m));
    if (bad !== undefined) {
      const keyBased = (AUTH_METHODS as readonly string[]).includes(bad);
      const federated = bad === 'federated_jwt' ? '--federated ISSUER:SUBJECT' : bad === 'spiffe_jwt' ? '--spiffe-id ID' : undefined;
      throw new UsageError(
        federated !== undefined
          ? `${command} makes a ${bad} client with ${federated}, not --auth-method`
          : keyBased
            ? `${command} makes secret-based clients; register a ${bad} client in the registry file by hand (see docs/guides/key-based-clients.md)`
            : `unknown auth method ${JSON.stringify(bad)} (use ${allowed.join(keyMethods ? ', ' : ' or ')})`,
      );
    }
    fields.auth_methods = methods as AuthMethod[];
  }
  if (values['allowed-ip'] !== undefined) {
    const ips = [...new Set(values['allowed-ip'])];
    const bad = ips.find((ip) => parseCidr(ip) === undefined);
    if (bad !== undefined) throw new UsageError(`invalid --allowed-ip ${JSON.stringify(bad)}: an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, 2001:db8::/32)`);
    fields.allowed_ips = ips;
  }
  return fields;
}

/** An instant as ISO 8601 UTC, without the milliseconds when there are none: 2026-11-23T10:00:00Z. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

export type FederationFlags = { kind: 'federated'; issuer: string; subject: string } | { kind: 'spiffe'; spiffeId: string };

/** What --federated or --spiffe-id asks for, checked as far as the command line allows. */
export function federationFlags(federated: string | undefined, spiffeId: string | undefined, authMethod: boolean): FederationFlags | undefined {
  if (federated === undefined && spiffeId === undefined) return undefined;
  if (federated !== undefined && spiffeId !== undefined) throw new UsageError('give --federated or --spiffe-id, not both');
  if (authMethod) throw new UsageError(`--${federated === undefined ? 'spiffe-id' : 'federated'} sets the client's auth method: leave out --auth-method`);
  if (spiffeId !== undefined) {
    if (spiffeTrustDomain(spiffeId) === undefined) throw new UsageError(`--spiffe-id must be a SPIFFE ID (spiffe://trust-domain/path), not ${JSON.stringify(spiffeId)}`);
    return { kind: 'spiffe', spiffeId };
  }
  // The subject may hold colons (system:serviceaccount:ns:name); issuer names never do.
  const colon = federated!.indexOf(':');
  const issuer = federated!.slice(0, Math.max(colon, 0));
  const subject = federated!.slice(colon + 1);
  if (colon <= 0 || subject === '') throw new UsageError(`--federated must be ISSUER:SUBJECT (a trusted issuer's name, then the exact sub of its tokens), not ${JSON.stringify(federated)}`);
  return { kind: 'federated', issuer, subject };
}
