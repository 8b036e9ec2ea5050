import { z } from 'zod';
import { canonicalIp, parseCidr, toBlockList } from '../shared/address-list.js';
import { audienceSchema, ttlSchema } from '../shared/field-schemas.js';
import { parseDistinguishedName } from './distinguished-name.js';
import { federatedIdentitySchema, spiffeIdSchema, toFederatedIdentity, toTrustedIssuer, trustedIssuerSchema } from './federation-schema.js';
import { isClientId, isScopeToken, MAX_CLIENT_ID_LENGTH } from '../shared/syntax.js';
import type { JWK } from 'jose';
import { AUTH_METHODS, SECRET_AUTH_METHODS, type Client, type TlsSubject, type TrustedIssuer } from './registry.js';

// argon2 work a single verify may demand. Hashes are checked on every token request, so a hash
// with absurd parameters (a typo of m=1919456) would let one request take a gigabyte.
const MAX_MEMORY_KIB = 262_144;
const MAX_TIME_COST = 16;
const MAX_PARALLELISM = 16;

const PHC = /^\$argon2id\$v=(\d+)\$([a-z]=\d+(?:,[a-z]=\d+)*)\$([A-Za-z0-9+/]{11,}={0,2})\$([A-Za-z0-9+/]{16,}={0,2})$/;

/** Why a string is not an argon2id hash tollgate accepts, or undefined when it is one. */
export function argon2idHashProblem(hash: string): string | undefined {
  if (!hash.startsWith('$')) {
    return 'must be an argon2id hash (make one with `tollgate hash-secret`); plaintext secrets are refused';
  }
  if (/^\$argon2(i|d)\$/.test(hash)) return 'must be an argon2id hash, not argon2i or argon2d';
  const m = PHC.exec(hash);
  if (m === null) return 'is not a well-formed argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)';
  if (m[1] !== '19') return 'must use argon2 version 19';
  const params = new Map(m[2]!.split(',').map((kv) => [kv[0]!, Number(kv.slice(2))]));
  const mem = params.get('m');
  const time = params.get('t');
  const par = params.get('p');
  if (params.size !== 3 || mem === undefined || time === undefined || par === undefined) {
    return 'must give exactly the m, t and p parameters';
  }
  if (mem > MAX_MEMORY_KIB || time > MAX_TIME_COST || par > MAX_PARALLELISM || time < 1 || par < 1) {
    return `has parameters too costly to check per request (at most m=${MAX_MEMORY_KIB}, t=${MAX_TIME_COST}, p=${MAX_PARALLELISM})`;
  }
  return undefined;
}

/** Fields an operator might use to paste a secret in the clear: refused with a pointed message. */
export const PLAINTEXT_FIELDS: ReadonlySet<string> = new Set(['secret', 'client_secret', 'password']);

const secretSchema = z.strictObject({
  hash: z.string({ error: 'must be an argon2id hash string' }).superRefine((hash, ctx) => {
    const problem = argon2idHashProblem(hash);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  }).describe('An argon2id PHC string (`tollgate hash-secret` makes one): version 19 and exactly the m, t and p parameters, at most m=262144 (KiB), t=16, p=16. Plaintext secrets are refused.'),
  expires_at: z
    .union([z.date(), z.string()], { error: 'must be a timestamp like 2027-01-01T00:00:00Z' })
    .transform((v, ctx) => {
      const ms = v instanceof Date ? v.getTime() : /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2}))?$/.test(v) ? Date.parse(v) : NaN;
      if (Number.isNaN(ms)) {
        ctx.addIssue({ code: 'custom', message: 'must be a timestamp like 2027-01-01T00:00:00Z (with a time zone)' });
        return z.NEVER;
      }
      return ms;
    })
    .optional()
    .meta({ docType: 'timestamp with a time zone (`2027-01-01T00:00:00Z`) or a date' })
    .describe('After this time the secret no longer works, on every server, with no restart.'),
});

/** A public key as RFC 7517 writes it; a private part (d) is refused: it must never be here. */
const publicJwkSchema = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP'], { error: 'kty must be RSA, EC or OKP' }).describe('The key type; the other members of a public JWK (`n`, `e`, `crv`, `x`, `y`) go beside it.'),
    kid: z.string().min(1).optional().describe('The key id the client puts in its assertions\' header.'),
    use: z.literal('sig', { error: 'use must be sig' }).optional().describe('If given, `sig`.'),
    alg: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA'], { error: 'alg must be RS256, PS256, ES256 or EdDSA' }).optional().describe('If given, the only algorithm accepted with this key.'),
  })
  .superRefine((k, ctx) => {
    if ('d' in k || 'p' in k || 'q' in k) ctx.addIssue({ code: 'custom', message: 'holds a private key: only the public key belongs in the registry' });
  });

const scopeSchema = z.string().refine(isScopeToken, {
  error: 'must be a scope token: visible ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)',
});

function uniqueList<T extends z.ZodType<string>>(item: T, what: string) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `${what} ${JSON.stringify(v)} is listed twice` });
      seen.add(v);
    });
  });
}

export const clientSchema = z
  .strictObject({
    client_id: z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).refine(isClientId, {
      error: `must be 1 to ${MAX_CLIENT_ID_LENGTH} visible ASCII characters or spaces (RFC 6749 VSCHAR)`,
    }).describe(`The client's id: 1 to ${MAX_CLIENT_ID_LENGTH} visible ASCII characters or spaces (RFC 6749 VSCHAR), unique in the registry.`),
    secrets: z
      .array(secretSchema, { error: 'must be a list of { hash, expires_at }' })
      .default([])
      .describe('The client\'s secrets, as hashes. At least one when `auth_methods` has a secret method; several during a rotation.'),
    auth_methods: uniqueList(
      z.enum(AUTH_METHODS, { error: `must be one of ${AUTH_METHODS.join(', ')}` }),
      'method',
    )
      .min(1, { error: 'must list at least one method' })
      .default([...SECRET_AUTH_METHODS])
      .describe('How the client may authenticate, with no repeats. `client_secret_jwt` is not offered: tollgate keeps no secret to check its HMAC with.'),
    scopes: uniqueList(scopeSchema, 'scope')
      .default([])
      .meta({ docType: 'list of scope tokens (RFC 6749 §3.3), unique' })
      .describe('The scopes the client may request.'),
    default_scopes: uniqueList(scopeSchema, 'scope')
      .optional()
      .meta({ docType: 'list of scope tokens, unique' })
      .describe('What the client is granted when it requests no scope; a subset of `scopes`. Unset: all of `scopes`.'),
    audiences: uniqueList(audienceSchema, 'audience')
      .default([])
      .describe('The audiences the client may request; the first is its default. Required when `tokens.audience` is empty.'),
    token_ttl: ttlSchema.optional().describe('The lifetime of its tokens. Unset: `tokens.ttl`.'),
    introspect: z.boolean().default(false).describe('Lets this client introspect any client\'s tokens (a resource server); otherwise only its own.'),
    allowed_ips: z
      .array(
        z.string().refine((s) => parseCidr(s) !== undefined, {
          error: 'must be an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, 2001:db8::/32)',
        }),
      )
      .optional()
      .describe('IPv4 or IPv6 addresses or CIDR blocks the client may connect from: the TCP peer, or the `X-Forwarded-For` address a `trust_proxy` proxy gives. Unset: any.'),
    disabled: z.boolean().default(false).describe('A disabled client cannot authenticate, and its tokens introspect as inactive.'),
    jwks: z
      .strictObject({
        keys: z
          .array(publicJwkSchema, { error: 'must be a list of public JWKs' })
          .min(1, { error: 'must hold at least one key' })
          .describe('Public JWKs (RSA, EC or OKP); a private part is refused.'),
      })
      .optional()
      .describe('The client\'s public keys, for `private_key_jwt` and `self_signed_tls_client_auth` (RFC 7591).'),
    jwks_uri: z
      .string()
      .refine((s) => /^https:\/\/[^\s#]+$/.test(s) && URL.canParse(s), { error: 'must be an https URL' })
      .optional()
      .describe('An https URL serving the client\'s JWK Set, for `private_key_jwt` instead of `jwks`. Fetched within 5 s, 64 KiB at most, cached for five minutes.'),
    tls_client_auth_subject_dn: z
      .string()
      .superRefine((dn, ctx) => {
        const parsed = parseDistinguishedName(dn);
        if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem });
      })
      .optional()
      .describe('`tls_client_auth`: the certificate\'s subject as an RFC 4514 string (`CN=edge-proxy,O=Example`; a comma in a value is `\\,`), compared as RFC 5280 §7.1 says. Exactly one of this or a `tls_client_auth_san_*` field.'),
    tls_client_auth_san_dns: z.string().min(1).optional().describe('`tls_client_auth`: a DNS name the certificate must hold (compared without regard to case).'),
    tls_client_auth_san_uri: z.string().min(1).optional().describe('`tls_client_auth`: a URI the certificate must hold (the case of scheme and host ignored).'),
    tls_client_auth_san_ip: z
      .string()
      .refine((s) => canonicalIp(s) !== undefined, { error: 'must be an IPv4 or IPv6 address' })
      .optional()
      .describe('`tls_client_auth`: an IP address the certificate must hold (compared as addresses).'),
    tls_client_auth_san_email: z.string().min(1).optional().describe('`tls_client_auth`: an email address the certificate must hold (the case of the domain ignored).'),
    federated_identity: federatedIdentitySchema.optional().describe('`federated_jwt`: the platform token that stands for this client.'),
    spiffe_id: spiffeIdSchema.optional().describe('`spiffe_jwt`: the client\'s SPIFFE ID. Unset: the `client_id`, which must then be one.'),
    dpop_bound_access_tokens: z.boolean().default(false).describe('Every token request of this client must carry a DPoP proof (RFC 9449).'),
  });

/** The registry file as written; docs/reference/registry.md is generated from it (npm run docs). */
export const registryFileSchema = z.strictObject({
  trusted_issuers: z
    .array(trustedIssuerSchema, { error: 'must be a list of trusted issuers' })
    .nullable()
    .default([])
    .describe('The token issuers whose workloads may authenticate as federated or SPIFFE clients (docs/guides/federation.md).'),
  clients: z.array(clientSchema, { error: 'must be a list of clients' }).nullable().default([]).describe('The clients.'),
});

export const registrySchema = registryFileSchema
  .transform((r) => ({ clients: (r.clients ?? []).map(toClient), trustedIssuers: (r.trusted_issuers ?? []).map(toTrustedIssuer) as TrustedIssuer[] }));

type ClientEntry = z.infer<typeof clientSchema>;

export const TLS_SUBJECT_FIELDS = [
  ['tls_client_auth_subject_dn', 'subject_dn'],
  ['tls_client_auth_san_dns', 'san_dns'],
  ['tls_client_auth_san_uri', 'san_uri'],
  ['tls_client_auth_san_ip', 'san_ip'],
  ['tls_client_auth_san_email', 'san_email'],
] as const;

function tlsSubjectOf(entry: ClientEntry): TlsSubject | undefined {
  for (const [field, kind] of TLS_SUBJECT_FIELDS) {
    const value = entry[field];
    if (value === undefined) continue;
    if (kind !== 'subject_dn') return { kind, value };
    const parsed = parseDistinguishedName(value);
    // The schema has already refused a DN that does not parse.
    if ('problem' in parsed) throw new TypeError(`tls_client_auth_subject_dn ${parsed.problem}`);
    return { kind, value, dn: parsed.dn };
  }
  return undefined;
}

/** Builds the runtime Client from a validated registry entry. */
export function toClient(entry: ClientEntry): Client {
  const allowedIps = entry.allowed_ips === undefined ? undefined : toBlockList(entry.allowed_ips);
  return Object.freeze({
    clientId: entry.client_id,
    secrets: entry.secrets.map((s) => Object.freeze({ hash: s.hash, expiresAt: s.expires_at })),
    authMethods: entry.auth_methods,
    scopes: entry.scopes,
    defaultScopes: entry.default_scopes ?? entry.scopes,
    audiences: entry.audiences,
    tokenTtl: entry.token_ttl,
    introspect: entry.introspect,
    allowedIps,
    disabled: entry.disabled,
    jwks: entry.jwks?.keys as JWK[] | undefined,
    jwksUri: entry.jwks_uri,
    tlsSubject: tlsSubjectOf(entry),
    federatedIdentity: toFederatedIdentity(entry.federated_identity),
    spiffeId: entry.auth_methods.includes('spiffe_jwt') ? (entry.spiffe_id ?? entry.client_id) : undefined,
    dpopBoundAccessTokens: entry.dpop_bound_access_tokens,
  });
}
