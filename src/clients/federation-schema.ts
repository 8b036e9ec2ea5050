import { z } from 'zod';
import { didYouMean } from '../shared/did-you-mean.js';
import { durationSchema } from '../shared/field-schemas.js';
import type { JWK } from 'jose';
import type { FederatedIdentity, TrustedIssuer } from './registry.js';
import { isTrustDomain, spiffeTrustDomain } from './spiffe-id.js';

// The registry's workload identity federation (CONTRACT §6): `trusted_issuers` at the top of
// clients.yaml, and the `federated_identity` and `spiffe_id` fields of a client.

/** A token living longer than this (exp - iat) is refused unless the issuer's max_lifetime allows it. */
export const DEFAULT_MAX_LIFETIME = 24 * 3600;
const MAX_MAX_LIFETIME = 30 * 24 * 3600;

/** Names are short words: `prod-cluster`, `github`. No `:`, so that the CLI's ISSUER:SUBJECT splits. */
const ISSUER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const httpsUrl = (what: string) =>
  z.string({ error: `must be an https URL` }).refine((s) => /^https:\/\/[^\s#?]+$/.test(s) && URL.canParse(s), {
    error: `must be an https URL without query or fragment (${what})`,
  });

/** An issuer's public key: a SPIFFE bundle also marks its keys `use: jwt-svid` or `x509-svid`. */
const issuerJwkSchema = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP'], { error: 'kty must be RSA, EC or OKP' }).describe('The key type; the other members of a public JWK go beside it.'),
    kid: z.string().min(1).optional().describe('The key id its tokens name.'),
    use: z
      .enum(['sig', 'jwt-svid', 'x509-svid'], { error: 'use must be sig, jwt-svid or x509-svid' })
      .optional()
      .describe('An `issuer`\'s tokens are checked with keys marked `sig` or not marked; JWT-SVIDs with a SPIFFE bundle\'s `jwt-svid` keys; `x509-svid` keys are never used.'),
  })
  .superRefine((k, ctx) => {
    if ('d' in k || 'p' in k || 'q' in k) ctx.addIssue({ code: 'custom', message: 'holds a private key: only the public key belongs in the registry' });
  });

export const trustedIssuerSchema = z.strictObject({
  name: z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).regex(ISSUER_NAME, {
    error: 'must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit',
  }).describe('The name clients refer to it by (`federated_identity.issuer`): 1 to 64 letters, digits, dots, dashes or underscores.'),
  issuer: httpsUrl('the exact iss of its tokens').optional().describe('The exact `iss` of its tokens (an OpenID Connect or OAuth issuer). One of this or `spiffe_trust_domain`.'),
  spiffe_trust_domain: z
    .string()
    .refine(isTrustDomain, { error: 'must be a SPIFFE trust domain: lowercase letters, digits, dots, dashes, underscores (example.org)' })
    .optional()
    .describe('A SPIFFE trust domain (`example.org`) whose JWT-SVIDs it accepts; needs `jwks` or `jwks_uri`.'),
  jwks_uri: httpsUrl('where its JWK Set is published').optional().describe('Where its JWK Set is published. Unset with `issuer`: found through its discovery document.'),
  jwks: z
    .strictObject({
      keys: z
        .array(issuerJwkSchema, { error: 'must be a list of public JWKs' })
        .min(1, { error: 'must hold at least one key' })
        .describe('Public JWKs; a private part is refused.'),
    })
    .optional()
    .describe('Its public keys, written here instead of fetched. Not with `jwks_uri`.'),
  max_lifetime: durationSchema(1, MAX_MAX_LIFETIME).optional().describe('The longest lifetime (`exp` - `iat`) of a token accepted from it. Unset: 24h.'),
});

/** A client's `federated_identity`. */
export const federatedIdentitySchema = z.strictObject({
  issuer: z
    .string({ error: 'must name an entry of trusted_issuers' })
    .min(1, { error: 'must name an entry of trusted_issuers' })
    .describe('The `name` of an entry of `trusted_issuers`.'),
  subject: z
    .string({ error: 'must be the exact sub of its tokens' })
    .min(1, { error: 'must be the exact sub of its tokens' })
    .max(1024)
    .describe('The exact `sub` of its tokens.'),
  claims: z
    .record(z.string().min(1), z.string({ error: 'must be a string the claim must equal' }))
    .refine((c) => !['iss', 'sub', 'aud', 'exp', 'nbf', 'iat'].some((k) => k in c), { error: 'iss, sub, aud, exp, nbf and iat are checked already; name other claims' })
    .optional()
    .describe('Other claims the token must carry, each equal to the string given (iss, sub, aud, exp, nbf and iat are checked already).'),
});

export const spiffeIdSchema = z.string().refine((s) => spiffeTrustDomain(s) !== undefined, {
  error: 'must be a SPIFFE ID: spiffe://trust-domain/path (lowercase trust domain, a non-empty path)',
});

type TrustedIssuerEntry = z.infer<typeof trustedIssuerSchema>;
type FederatedIdentityEntry = z.infer<typeof federatedIdentitySchema>;

export function toTrustedIssuer(entry: TrustedIssuerEntry): TrustedIssuer {
  return Object.freeze({
    name: entry.name,
    issuer: entry.issuer,
    spiffeTrustDomain: entry.spiffe_trust_domain,
    jwks: entry.jwks?.keys as JWK[] | undefined,
    jwksUri: entry.jwks_uri,
    maxLifetime: entry.max_lifetime ?? DEFAULT_MAX_LIFETIME,
  });
}

export function toFederatedIdentity(entry: FederatedIdentityEntry | undefined): FederatedIdentity | undefined {
  if (entry === undefined) return undefined;
  return Object.freeze({ issuer: entry.issuer, subject: entry.subject, ...(entry.claims === undefined ? {} : { claims: Object.freeze({ ...entry.claims }) }) });
}

/**
 * The federation rules between fields and entries, on the raw document (so that they run beside
 * field errors): each issuer complete and named once, each client's issuer or trust domain there.
 */
export function federationProblems(doc: { trusted_issuers?: unknown; clients?: unknown }, at: (path: (string | number)[], message: string) => void): void {
  const issuers = Array.isArray(doc.trusted_issuers) ? doc.trusted_issuers : [];
  const names = new Map<string, Record<string, unknown>>();
  const seenIss = new Map<string, number>();
  const seenDomain = new Map<string, number>();
  issuers.forEach((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      at(['trusted_issuers', i], 'must be a mapping with name and issuer or spiffe_trust_domain');
      return;
    }
    const t = entry as Record<string, unknown>;
    if (typeof t.name === 'string') {
      if (names.has(t.name)) at(['trusted_issuers', i, 'name'], `duplicate name ${JSON.stringify(t.name)}`);
      else names.set(t.name, t);
    }
    const once = (field: string, seen: Map<string, number>) => {
      const v = t[field];
      if (typeof v !== 'string') return;
      const first = seen.get(v);
      if (first !== undefined) at(['trusted_issuers', i, field], `${JSON.stringify(v)} is also trusted_issuers[${first}]`);
      else seen.set(v, i);
    };
    once('issuer', seenIss);
    once('spiffe_trust_domain', seenDomain);
    const has = (field: string) => t[field] !== undefined;
    if (!has('issuer') && !has('spiffe_trust_domain')) at(['trusted_issuers', i], 'needs issuer (an OpenID Connect or OAuth issuer) or spiffe_trust_domain');
    if (has('jwks') && has('jwks_uri')) at(['trusted_issuers', i], 'give jwks or jwks_uri, not both');
    if (has('spiffe_trust_domain') && !has('jwks') && !has('jwks_uri')) {
      at(['trusted_issuers', i], "a SPIFFE trust domain needs jwks_uri (its bundle endpoint) or jwks: there is no discovery for it");
    }
  });

  const clients = Array.isArray(doc.clients) ? doc.clients : [];
  const domains = new Set([...names.values()].map((t) => t.spiffe_trust_domain).filter((d): d is string => typeof d === 'string'));
  const spiffeIds = new Map<string, number>();
  clients.forEach((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return;
    const c = entry as Record<string, unknown>;
    const methods = Array.isArray(c.auth_methods) ? c.auth_methods : [];
    const federated = methods.includes('federated_jwt');
    const spiffe = methods.includes('spiffe_jwt');
    if (federated && c.federated_identity === undefined) at(['clients', i], 'federated_jwt needs federated_identity: { issuer, subject }');
    if (!federated && c.federated_identity !== undefined) at(['clients', i, 'federated_identity'], 'is used only by federated_jwt, which auth_methods does not list');
    if (!spiffe && c.spiffe_id !== undefined) at(['clients', i, 'spiffe_id'], 'is used only by spiffe_jwt, which auth_methods does not list');
    const fi = c.federated_identity as Record<string, unknown> | undefined;
    if (federated && fi !== null && typeof fi === 'object' && typeof fi.issuer === 'string') {
      const named = names.get(fi.issuer);
      if (named === undefined) {
        const meant = didYouMean(fi.issuer, names.keys());
        at(['clients', i, 'federated_identity', 'issuer'], `no trusted issuer is named ${JSON.stringify(fi.issuer)}${meant === undefined ? '' : ` (did you mean ${meant}?)`}`);
      } else if (named.issuer === undefined || named.spiffe_trust_domain !== undefined) {
        at(['clients', i, 'federated_identity', 'issuer'], `${JSON.stringify(fi.issuer)} is a SPIFFE trust domain: use auth_methods [spiffe_jwt] for JWT-SVIDs`);
      }
    }
    if (spiffe) {
      const id = c.spiffe_id ?? c.client_id;
      if (typeof id !== 'string') return;
      const domain = spiffeTrustDomain(id);
      const field = c.spiffe_id === undefined ? 'client_id' : 'spiffe_id';
      if (domain === undefined) {
        if (field === 'client_id') at(['clients', i], 'spiffe_jwt needs a SPIFFE ID: set spiffe_id, or make the client_id one (spiffe://trust-domain/path)');
      } else if (!domains.has(domain)) {
        at(['clients', i, field], `trust domain ${JSON.stringify(domain)} is not in trusted_issuers (spiffe_trust_domain)`);
      }
      const first = spiffeIds.get(id);
      if (first !== undefined) at(['clients', i, field], `SPIFFE ID ${JSON.stringify(id)} is also the one of clients[${first}]`);
      else spiffeIds.set(id, i);
    }
  });
}
